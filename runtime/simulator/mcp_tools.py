"""The simulated Dot's MCP server: the tools the xiaozhi firmware exposes, answered
the way `main/mcp_server.cc` answers them.

Tools: `self.get_device_status`, `self.audio_speaker.set_volume`,
`self.screen.set_brightness`, `self.camera.take_photo` (it "captures" a
generated picture and posts it, with the question, as multipart/form-data to
the vision URL from `initialize`, Bearer token included, exactly like the
firmware's camera), and the user-only `self.reboot`, listed only with
`withUserTools`. `tools/list` pages a few tools at a time, its `nextCursor`
being the next tool's name, as the firmware does near its 8 KB page limit.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from runtime.protocol import mcp
from runtime.protocol.errors import ProtocolError
from shared.tool_schema import object_schema

BOARD = "opendot-simulator"


def _int_schema(name: str) -> dict[str, Any]:
    return object_schema({name: {"type": "integer", "minimum": 0, "maximum": 100}}, [name])


TOOLS = (
    mcp.DeviceTool(
        "self.get_device_status",
        "Provides the real-time information of the device, including the current status of "
        "the audio speaker, screen, battery and network. Use it to answer questions about the "
        "device and as the first step to control it.",
        object_schema({}),
    ),
    mcp.DeviceTool(
        "self.audio_speaker.set_volume",
        "Set the volume of the audio speaker. If the current volume is unknown, call "
        "`self.get_device_status` first.",
        _int_schema("volume"),
    ),
    mcp.DeviceTool(
        "self.screen.set_brightness", "Set the brightness of the screen.", _int_schema("brightness")
    ),
    mcp.DeviceTool(
        "self.camera.take_photo",
        "Take a photo and explain it. Use this tool after the user asks you to see something.\n"
        "Args:\n  `question`: The question that you want to ask about the photo.",
        object_schema({"question": {"type": "string"}}, ["question"]),
    ),
    mcp.DeviceTool("self.reboot", "Reboot the system", object_schema({}), user_only=True),
)


def generated_photo(width: int = 64, height: int = 48) -> bytes:
    """A small PNG (a colour gradient): the simulator's camera has no sensor."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 4 % 256, y * 5 % 256, 128))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@dataclass
class SimulatedTools:
    firmware_version: str = "1.7.2"
    page_size: int = 2
    volume: int = 70
    brightness: int = 80
    vision: mcp.Vision | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every method asked, in order
    http: httpx.AsyncClient | None = None
    report: Callable[[str], None] = lambda _line: None

    async def handle(self, payload: object) -> dict[str, Any] | None:
        """One JSON-RPC message from the runtime -> the answer payload (None: no answer)."""
        message = mcp.parse_payload(payload)
        if isinstance(message, ProtocolError) or not isinstance(message, mcp.Request):
            return None
        self.requests.append(message.method)
        params: Mapping[str, Any] = message.params or {}
        if message.method == "initialize":
            self.vision = mcp.parse_vision(params)
            return mcp.initialize_result(message.id, BOARD, self.firmware_version).to_payload()
        if message.method == "tools/list":
            return self._list(message.id, params)
        if message.method == "tools/call":
            return (await self._call(message.id, params)).to_payload()
        return mcp.Error(message.id, f"Method not implemented: {message.method}").to_payload()

    def _list(self, rid: int, params: Mapping[str, Any]) -> dict[str, Any]:
        with_user = params.get("withUserTools") is True
        listed = [t for t in TOOLS if with_user or not t.user_only]
        cursor = params.get("cursor") or ""
        names = [t.name for t in listed]
        start = names.index(cursor) if cursor in names else 0
        page = listed[start : start + self.page_size]
        result: dict[str, Any] = {"tools": [mcp.tool_entry(t) for t in page]}
        if start + self.page_size < len(listed):
            result["nextCursor"] = listed[start + self.page_size].name
        return mcp.Result(rid, result).to_payload()

    async def _call(self, rid: int, params: Mapping[str, Any]) -> mcp.Result | mcp.Error:
        name = params.get("name")
        args = params.get("arguments") or {}
        if not isinstance(name, str) or not isinstance(args, dict):
            return mcp.Error(rid, "Missing name")
        self.calls.append((name, dict(args)))
        self.report(f"mcp tools/call {name} {json.dumps(args)}")
        handlers: dict[str, Callable[[dict[str, Any]], Awaitable[str]]] = {
            "self.get_device_status": self._status,
            "self.audio_speaker.set_volume": self._set_volume,
            "self.screen.set_brightness": self._set_brightness,
            "self.camera.take_photo": self._take_photo,
            "self.reboot": self._reboot,
        }
        handler = handlers.get(name)
        if handler is None:
            return mcp.Error(rid, f"Unknown tool: {name}")
        try:
            return mcp.text_result(rid, await handler(args))
        except (KeyError, ValueError, RuntimeError) as exc:
            return mcp.Error(rid, str(exc) or type(exc).__name__)

    async def _status(self, _args: dict[str, Any]) -> str:
        return json.dumps(
            {
                "audio_speaker": {"volume": self.volume},
                "screen": {"brightness": self.brightness, "theme": "light"},
                "battery": {"level": 87, "charging": False},
                "network": {"type": "wifi", "signal": "strong"},
            }
        )

    @staticmethod
    def _level(args: dict[str, Any], key: str) -> int:
        value = args[key]
        if not isinstance(value, int) or not 0 <= value <= 100:
            raise ValueError(f"Property '{key}': value {value} is out of range 0..100")
        return value

    async def _set_volume(self, args: dict[str, Any]) -> str:
        self.volume = self._level(args, "volume")
        return "true"

    async def _set_brightness(self, args: dict[str, Any]) -> str:
        self.brightness = self._level(args, "brightness")
        return "true"

    async def _reboot(self, _args: dict[str, Any]) -> str:
        return "true"

    async def _take_photo(self, args: dict[str, Any]) -> str:
        vision = self.vision
        if vision is None or not vision.url:
            raise RuntimeError("Image explain URL or token is not set")
        headers = {"Authorization": f"Bearer {vision.token}"} if vision.token else {}
        files = {"file": ("camera.png", generated_photo(), "image/png")}
        data = {"question": str(args.get("question", ""))}
        client = self.http or httpx.AsyncClient(timeout=30.0)
        try:
            response = await client.post(vision.url, data=data, files=files, headers=headers)
        except httpx.HTTPError as exc:
            raise RuntimeError("Failed to connect to explain URL") from exc
        finally:
            if self.http is None:
                await client.aclose()
        if response.status_code != 200:
            raise RuntimeError("Failed to upload photo")
        return response.text
