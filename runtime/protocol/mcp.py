"""MCP over the device socket: JSON-RPC 2.0 inside `{"type":"mcp","payload":…}`.

The xiaozhi firmware is an MCP *server* (its `main/mcp_server.cc`); the
runtime is the client. Facts this module follows (firmware `docs/mcp-protocol.md`
and the server source):

- requests carry a numeric `id` (the firmware ignores any other kind);
- `initialize` may carry `capabilities.vision {url, token}`: the camera tool
  POSTs its photo there with `Authorization: Bearer <token>`; the answer has
  `protocolVersion` "2024-11-05" and `serverInfo {name: board, version: firmware}`;
- `tools/list {cursor, withUserTools}` pages by `nextCursor` (the name of the
  next tool; about 8 KB of tools per page); a user-only tool (reboot, firmware
  upgrade) carries `annotations.audience == ["user"]` and is listed only with
  `withUserTools: true`;
- `tools/call {name, arguments}` answers `{content: [{type:"text", text}],
  isError}` or a JSON-RPC error whose `code` the firmware often leaves out;
- notifications have no `id` and get no answer.

Pure and synchronous: payloads (already-decoded JSON values) go in, typed
values come out, anything malformed is a `ProtocolError` value. Sizes are
bounded here so one device cannot hand the model a megabyte of tool list.
Both directions exist, so the device simulator answers exactly what the
runtime parses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from runtime.protocol.errors import ProtocolError

JSONRPC: Final = "2.0"
PROTOCOL_VERSION: Final = "2024-11-05"

MAX_TOOLS: Final = 128  # per device, over all pages
MAX_PAGES: Final = 16
MAX_NAME_CHARS: Final = 128
MAX_DESCRIPTION_CHARS: Final = 2048
MAX_SCHEMA_BYTES: Final = 8192
MAX_RESULT_CHARS: Final = 8192  # a tool result the model reads; longer text is cut
MAX_ERROR_CHARS: Final = 512

# JSON-RPC 2.0 error codes.
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603


# --- payloads: what goes over the wire ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    method: str
    params: Mapping[str, Any] | None = None

    def to_payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"jsonrpc": JSONRPC, "method": self.method}
        if self.params is not None:
            body["params"] = dict(self.params)
        body["id"] = self.id
        return body


@dataclass(frozen=True, slots=True)
class Notification:
    method: str
    params: Mapping[str, Any] | None = None

    def to_payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"jsonrpc": JSONRPC, "method": self.method}
        if self.params is not None:
            body["params"] = dict(self.params)
        return body


@dataclass(frozen=True, slots=True)
class Result:
    id: int
    result: Mapping[str, Any]

    def to_payload(self) -> dict[str, Any]:
        return {"jsonrpc": JSONRPC, "id": self.id, "result": dict(self.result)}


@dataclass(frozen=True, slots=True)
class Error:
    id: int | None
    message: str
    code: int | None = None

    def to_payload(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message}
        if self.code is not None:
            error["code"] = self.code
        return {"jsonrpc": JSONRPC, "id": self.id, "error": error}


Message = Request | Notification | Result | Error


def _request_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _params(obj: Mapping[str, Any]) -> Mapping[str, Any] | ProtocolError | None:
    params = obj.get("params")
    if params is None or isinstance(params, Mapping):
        return params
    return ProtocolError("mcp params must be an object")


def _parse_error(obj: Mapping[str, Any], rid: int | None) -> Error:
    error = obj["error"]
    if not isinstance(error, Mapping):
        return Error(rid, _clip(str(error), MAX_ERROR_CHARS) or "error")
    message = error.get("message")
    text = message if isinstance(message, str) and message else "error"
    code = _request_id(error.get("code"))
    return Error(rid, _clip(text, MAX_ERROR_CHARS), code)


def parse_payload(payload: object) -> Message | ProtocolError:
    """One JSON-RPC message (the `payload` of an `mcp` device message)."""
    if not isinstance(payload, Mapping):
        return ProtocolError("mcp payload is not a JSON object")
    if payload.get("jsonrpc") != JSONRPC:
        return ProtocolError("mcp payload is not JSON-RPC 2.0")
    rid = _request_id(payload.get("id"))
    method = payload.get("method")
    if isinstance(method, str) and method:
        params = _params(payload)
        if isinstance(params, ProtocolError):
            return params
        if "id" not in payload:
            return Notification(method, params)
        if rid is None:
            return ProtocolError("mcp request id must be a number")
        return Request(rid, method, params)
    if "error" in payload and payload["error"] is not None:
        return _parse_error(payload, rid)
    if rid is None:
        return ProtocolError("mcp response without a numeric id")
    result = payload.get("result")
    if not isinstance(result, Mapping):
        return ProtocolError("mcp response without a result object")
    return Result(rid, result)


# --- requests the runtime sends -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vision:
    """Where the camera tool posts its photo, and the bearer token it sends."""

    url: str
    token: str


def initialize(rid: int, vision: Vision | None = None) -> Request:
    capabilities: dict[str, Any] = {}
    if vision is not None:
        capabilities["vision"] = {"url": vision.url, "token": vision.token}
    return Request(
        rid,
        "initialize",
        {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": capabilities,
            "clientInfo": {"name": "opendot-runtime", "version": "1"},
        },
    )


def tools_list(rid: int, cursor: str = "", *, with_user_tools: bool = False) -> Request:
    params: dict[str, Any] = {"cursor": cursor}
    if with_user_tools:
        params["withUserTools"] = True
    return Request(rid, "tools/list", params)


def tools_call(rid: int, name: str, arguments: Mapping[str, Any]) -> Request:
    return Request(rid, "tools/call", {"name": name, "arguments": dict(arguments)})


# --- results the runtime reads ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerInfo:
    protocol_version: str
    name: str
    version: str


def parse_initialize(result: Mapping[str, Any]) -> ServerInfo:
    """Liberal: a firmware that leaves fields out still gets its tools listed."""
    info = result.get("serverInfo")
    info = info if isinstance(info, Mapping) else {}
    version = result.get("protocolVersion")
    return ServerInfo(
        protocol_version=version if isinstance(version, str) else "",
        name=_clip(_text(info.get("name")), MAX_NAME_CHARS),
        version=_clip(_text(info.get("version")), MAX_NAME_CHARS),
    )


@dataclass(frozen=True, slots=True)
class DeviceTool:
    name: str
    description: str
    input_schema: Mapping[str, Any]
    user_only: bool = False


@dataclass(frozen=True, slots=True)
class ToolsPage:
    tools: tuple[DeviceTool, ...]
    next_cursor: str | None
    # Entries dropped as malformed, each a short reason (recorded, never offered).
    dropped: tuple[str, ...] = field(default=())


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tool(entry: object) -> DeviceTool | str:
    if not isinstance(entry, Mapping):
        return "a tool entry that is not an object"
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        return "a tool without a name"
    if len(name) > MAX_NAME_CHARS:
        return f"tool {name[:40]}… has a name longer than {MAX_NAME_CHARS} characters"
    schema = entry.get("inputSchema")
    if schema is None:
        schema = {"type": "object", "properties": {}}
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        return f"tool {name} has an input schema that is not an object schema"
    try:
        size = len(json.dumps(schema, allow_nan=False))
    except (TypeError, ValueError):
        return f"tool {name} has an input schema that is not JSON"
    if size > MAX_SCHEMA_BYTES:
        return f"tool {name} has an input schema larger than {MAX_SCHEMA_BYTES} bytes"
    annotations = entry.get("annotations")
    audience = annotations.get("audience") if isinstance(annotations, Mapping) else None
    user_only = isinstance(audience, list) and "user" in audience and "assistant" not in audience
    return DeviceTool(
        name=name,
        description=_clip(_text(entry.get("description")), MAX_DESCRIPTION_CHARS),
        input_schema=dict(schema),
        user_only=user_only,
    )


def parse_tools_page(result: Mapping[str, Any]) -> ToolsPage | ProtocolError:
    raw = result.get("tools")
    if not isinstance(raw, list):
        return ProtocolError("tools/list result without a tools array")
    tools: list[DeviceTool] = []
    dropped: list[str] = []
    for entry in raw:
        parsed = _tool(entry)
        if isinstance(parsed, str):
            dropped.append(parsed)
        else:
            tools.append(parsed)
    cursor = result.get("nextCursor")
    next_cursor = cursor if isinstance(cursor, str) and cursor else None
    return ToolsPage(tuple(tools), next_cursor, tuple(dropped))


@dataclass(frozen=True, slots=True)
class CallResult:
    """What a tool call gave back, as text for the model."""

    text: str
    is_error: bool = False


def _content_text(item: object) -> str:
    if not isinstance(item, Mapping):
        return ""
    kind = item.get("type")
    if kind == "text":
        return _text(item.get("text"))
    if kind in ("image", "audio"):
        # The model gets a note, not megabytes of base64; vision has its own endpoint.
        mime = _text(item.get("mimeType")) or kind
        return f"[{kind} {mime} omitted]"
    if kind == "resource":
        resource = item.get("resource")
        if isinstance(resource, Mapping):
            return _text(resource.get("text")) or f"[resource {_text(resource.get('uri'))}]"
    return ""


def parse_call_result(result: Mapping[str, Any]) -> CallResult:
    content = result.get("content")
    parts = [_content_text(item) for item in content] if isinstance(content, list) else []
    text = "\n".join(p for p in parts if p)
    if not text and "structuredContent" in result:
        try:
            text = json.dumps(result["structuredContent"], ensure_ascii=False)
        except (TypeError, ValueError):
            text = ""
    return CallResult(_clip(text, MAX_RESULT_CHARS), result.get("isError") is True)


def call_error(error: Error) -> CallResult:
    """A JSON-RPC error answer to `tools/call`, as the model's tool result."""
    prefix = f"error {error.code}: " if error.code is not None else "error: "
    return CallResult(prefix + error.message, is_error=True)


# --- the device side (the simulator answers with these) -------------------------------------


def tool_entry(tool: DeviceTool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": tool.name,
        "description": tool.description,
        "inputSchema": dict(tool.input_schema),
    }
    if tool.user_only:
        entry["annotations"] = {"audience": ["user"]}
    return entry


def initialize_result(rid: int, board: str, firmware_version: str) -> Result:
    return Result(
        rid,
        {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": board, "version": firmware_version},
        },
    )


def text_result(rid: int, text: str, *, is_error: bool = False) -> Result:
    return Result(rid, {"content": [{"type": "text", "text": text}], "isError": is_error})


def parse_vision(params: Mapping[str, Any] | None) -> Vision | None:
    """The device's reading of `initialize`: the vision URL and token, if given."""
    capabilities = params.get("capabilities") if params is not None else None
    vision = capabilities.get("vision") if isinstance(capabilities, Mapping) else None
    if not isinstance(vision, Mapping) or not isinstance(vision.get("url"), str):
        return None
    return Vision(vision["url"], _text(vision.get("token")))
