"""The agent's `tools` block: what an agent may do besides talk, versioned with the agent.

    {
      "version": 1,
      "maxCallsPerTurn": 5, "callTimeoutS": 10,
      "filler": {"enabled": false, "text": "One moment."},
      "device": {"enabled": true, "allowUserOnly": [], "deny": []},
      "builtins": {"datetime": true, "deviceStatus": true, "endConversation": true,
                   "memory": true},
      "webhooks": [{"name", "description", "parameters", "url", "method",
                    "headers": [{"name", "value"} | {"name", "secret"}], "timeoutS"}],
      "mcpServers": [{"name", "url", "bearerSecret", "allow": []}],
      "vision": {"enabled": false, "model", "baseUrl", "apiKeyName"}
    }

Secrets appear by name only (`secret`, `bearerSecret`, `apiKeyName`): the value
stays sealed in the owner's `user_secrets`. Two readers: the platform API
calls `tools_problem` and refuses a block with a sentence a person can act on;
everyone calls `normalize_tools`, which is lenient (unknown keys and invalid
entries dropped, defaults filled in), so an old or partial block never breaks
a turn. No I/O here; the runtime's network guard still checks every URL when
it is used.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from shared.tool_schema import schema_problems

VERSION: Final = 1
METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_WEBHOOKS: Final = 16
MAX_MCP_SERVERS: Final = 4
MAX_HEADERS: Final = 8
NAME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,47}$")
SECRET_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Headers the runtime owns: a webhook may not set them.
RESERVED_HEADERS: Final = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "cookie"}
)
_BUILTINS: Final = ("datetime", "deviceStatus", "endConversation", "memory")

_DEFAULT: Final[dict[str, Any]] = {
    "version": VERSION,
    "maxCallsPerTurn": 5,
    "callTimeoutS": 10,
    "filler": {"enabled": False, "text": "One moment."},
    "device": {"enabled": True, "allowUserOnly": [], "deny": []},
    "builtins": {name: True for name in _BUILTINS},
    "webhooks": [],
    "mcpServers": [],
    "vision": {
        "enabled": False,
        "model": "gpt-4.1-mini",
        "baseUrl": "",
        "apiKeyName": "OPENAI_API_KEY",
    },
}


def default_tools() -> dict[str, Any]:
    return copy.deepcopy(_DEFAULT)


class ToolsConfigError(ValueError):
    """A tools block the API refuses; the message is the sentence to show."""


# --- strict checks (the API) -------------------------------------------------------------


def _local_host(host: str) -> bool:
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback


def url_problem(url: object, what: str) -> str | None:
    """https:// for anything public; plain http only for a local service (which the
    runtime reaches only when its operator allows private addresses)."""
    if not isinstance(url, str) or not url.strip():
        return f"{what} needs a url."
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        return f"{what} url is not a valid URL."
    if parts.username or parts.password:
        return f"{what} url may not carry a user name or password; use a header with a secret."
    host = parts.hostname or ""
    if not host:
        return f"{what} url has no host name."
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and _local_host(host):
        return None
    return f"{what} url must start with https:// (plain http only for a local service)."


def _bool(value: object, what: str) -> str | None:
    return None if isinstance(value, bool) else f"{what} must be true or false."


def _int(value: object, what: str, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        return f"{what} must be a number from {low} to {high}."
    return None


def _names(value: object, what: str) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return f"{what} must be a list of tool names."
    if len(value) > 64:
        return f"{what} may list at most 64 tools."
    return None


def _webhook_problem(hook: object, index: int, seen: set[str]) -> str | None:
    if not isinstance(hook, Mapping):
        return f"webhook {index + 1} must be an object."
    name = hook.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        return (
            f"webhook {index + 1} needs a name of letters, digits, _ or - "
            "(starting with a letter, at most 48 characters)."
        )
    what = f"webhook {name}"
    if name in seen:
        return f"{what} is defined twice; tool names must be unique."
    seen.add(name)
    description = hook.get("description")
    if not isinstance(description, str) or not description.strip():
        return f"{what} needs a description: the model reads it to decide when to call it."
    if len(description) > 1024:
        return f"{what} description is longer than 1024 characters."
    problem = schema_problems(hook.get("parameters", {"type": "object"}))
    if problem is not None:
        return f"{what} {problem}"
    problem = url_problem(hook.get("url"), what)
    if problem is not None:
        return problem
    method = hook.get("method", "POST")
    if method not in METHODS:
        return f"{what} method must be one of {', '.join(METHODS)}."
    if "timeoutS" in hook and (problem := _int(hook["timeoutS"], f"{what} timeoutS", 1, 30)):
        return problem
    headers = hook.get("headers", [])
    if not isinstance(headers, list) or len(headers) > MAX_HEADERS:
        return f"{what} headers must be a list of at most {MAX_HEADERS} entries."
    for header in headers:
        problem = _header_problem(header, what)
        if problem is not None:
            return problem
    return None


def _header_problem(header: object, what: str) -> str | None:
    if not isinstance(header, Mapping) or not isinstance(header.get("name"), str):
        return f"{what} headers need a name each."
    name = header["name"].strip()
    if not name or not name.isascii() or any(c in name for c in " :\r\n\0"):
        return f"{what} header {name!r} is not a valid header name."
    if name.lower() in RESERVED_HEADERS:
        return f"{what} may not set the {name} header; the runtime sets it."
    has_value, has_secret = "value" in header, "secret" in header
    if has_value == has_secret:
        return f"{what} header {name} needs either a value or the name of a secret, not both."
    if has_secret:
        secret = header["secret"]
        if not isinstance(secret, str) or not SECRET_NAME_RE.match(secret):
            return f"{what} header {name} names a secret that is not a valid secret name."
        return None
    value = header["value"]
    if not isinstance(value, str) or len(value) > 1024 or any(c in value for c in "\r\n\0"):
        return f"{what} header {name} value must be one line of at most 1024 characters."
    if name.lower() in ("authorization", "x-api-key", "api-key"):
        return f"{what} header {name} must name a stored secret instead of holding the value."
    return None


def _mcp_problem(server: object, index: int, seen: set[str]) -> str | None:
    if not isinstance(server, Mapping):
        return f"MCP server {index + 1} must be an object."
    name = server.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        return (
            f"MCP server {index + 1} needs a name of letters, digits, _ or - "
            "(starting with a letter, at most 48 characters)."
        )
    if name in seen:
        return f"MCP server {name} is defined twice."
    seen.add(name)
    problem = url_problem(server.get("url"), f"MCP server {name}")
    if problem is not None:
        return problem
    secret = server.get("bearerSecret")
    if secret not in (None, "") and (
        not isinstance(secret, str) or not SECRET_NAME_RE.match(secret)
    ):
        return f"MCP server {name} bearerSecret must be the name of one of your stored secrets."
    if "allow" in server:
        return _names(server["allow"], f"MCP server {name} allow")
    return None


def _section_problem(raw: Mapping[str, Any]) -> str | None:
    for key in ("maxCallsPerTurn", "callTimeoutS"):
        if key in raw:
            high = 20 if key == "maxCallsPerTurn" else 60
            if problem := _int(raw[key], f"tools {key}", 1, high):
                return problem
    filler = raw.get("filler", {})
    if not isinstance(filler, Mapping):
        return "tools filler must be an object."
    if "enabled" in filler and (problem := _bool(filler["enabled"], "tools filler enabled")):
        return problem
    text = filler.get("text", "One moment.")
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= 80:
        return "tools filler text must be a short phrase (1 to 80 characters)."
    device = raw.get("device", {})
    if not isinstance(device, Mapping):
        return "tools device must be an object."
    if "enabled" in device and (problem := _bool(device["enabled"], "tools device enabled")):
        return problem
    for key in ("allowUserOnly", "deny"):
        if key in device and (problem := _names(device[key], f"tools device {key}")):
            return problem
    builtins = raw.get("builtins", {})
    if not isinstance(builtins, Mapping):
        return "tools builtins must be an object."
    for key, value in builtins.items():
        if key not in _BUILTINS:
            return f"tools builtins has no {key!r}; the built-ins are {', '.join(_BUILTINS)}."
        if problem := _bool(value, f"tools builtins {key}"):
            return problem
    vision = raw.get("vision", {})
    if not isinstance(vision, Mapping):
        return "tools vision must be an object."
    if "enabled" in vision and (problem := _bool(vision["enabled"], "tools vision enabled")):
        return problem
    base = vision.get("baseUrl", "")
    if base and (problem := url_problem(base, "tools vision baseUrl")):
        return problem.replace("baseUrl url", "baseUrl")
    key_name = vision.get("apiKeyName", "")
    if key_name and (not isinstance(key_name, str) or not SECRET_NAME_RE.match(key_name)):
        return "tools vision apiKeyName must be a key name such as OPENAI_API_KEY."
    model = vision.get("model", "gpt-4.1-mini")
    if not isinstance(model, str) or not 1 <= len(model) <= 128:
        return "tools vision model must be a model name."
    return None


def tools_problem(raw: object) -> str | None:
    """Why the API must refuse this tools block, as a sentence; None when it is fine."""
    if not isinstance(raw, Mapping):
        return "tools must be an object."
    version = raw.get("version", VERSION)
    if version != VERSION:
        return f"tools version {version!r} is not supported (this platform reads version 1)."
    problem = _section_problem(raw)
    if problem is not None:
        return problem
    webhooks = raw.get("webhooks", [])
    if not isinstance(webhooks, list) or len(webhooks) > MAX_WEBHOOKS:
        return f"tools webhooks must be a list of at most {MAX_WEBHOOKS} webhooks."
    seen: set[str] = set()
    for index, hook in enumerate(webhooks):
        if problem := _webhook_problem(hook, index, seen):
            return problem
    servers = raw.get("mcpServers", [])
    if not isinstance(servers, list) or len(servers) > MAX_MCP_SERVERS:
        return f"tools mcpServers must be a list of at most {MAX_MCP_SERVERS} servers."
    seen_servers: set[str] = set()
    for index, server in enumerate(servers):
        if problem := _mcp_problem(server, index, seen_servers):
            return problem
    return None


# --- lenient reading (everyone) ---------------------------------------------------------------


def _merge_flat(target: dict[str, Any], stored: object, kinds: Mapping[str, type]) -> None:
    if not isinstance(stored, Mapping):
        return
    for key, kind in kinds.items():
        value = stored.get(key)
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            target[key] = copy.deepcopy(value)


def normalize_tools(stored: object) -> dict[str, Any]:
    """The block with defaults filled in and anything invalid left out."""
    tools = default_tools()
    if not isinstance(stored, Mapping):
        return tools
    for key, high in (("maxCallsPerTurn", 20), ("callTimeoutS", 60)):
        value = stored.get(key)
        if _int(value, key, 1, high) is None:
            tools[key] = int(value)  # type: ignore[arg-type]
    _merge_flat(tools["filler"], stored.get("filler"), {"enabled": bool, "text": str})
    _merge_flat(
        tools["device"],
        stored.get("device"),
        {"enabled": bool, "allowUserOnly": list, "deny": list},
    )
    for key in ("allowUserOnly", "deny"):
        tools["device"][key] = [v for v in tools["device"][key] if isinstance(v, str) and v]
    _merge_flat(tools["builtins"], stored.get("builtins"), dict.fromkeys(_BUILTINS, bool))
    _merge_flat(
        tools["vision"],
        stored.get("vision"),
        {"enabled": bool, "model": str, "baseUrl": str, "apiKeyName": str},
    )
    webhooks = stored.get("webhooks")
    seen: set[str] = set()
    for index, hook in enumerate(webhooks if isinstance(webhooks, list) else []):
        if index < MAX_WEBHOOKS and _webhook_problem(hook, index, seen) is None:
            tools["webhooks"].append(copy.deepcopy(dict(hook)))
    servers = stored.get("mcpServers")
    seen = set()
    for index, server in enumerate(servers if isinstance(servers, list) else []):
        if index < MAX_MCP_SERVERS and _mcp_problem(server, index, seen) is None:
            tools["mcpServers"].append(copy.deepcopy(dict(server)))
    return tools


def validate_tools(raw: object) -> dict[str, Any]:
    """The API's entry point: the normalised block, or ToolsConfigError with the sentence."""
    problem = tools_problem(raw)
    if problem is not None:
        raise ToolsConfigError(problem)
    return normalize_tools(raw)
