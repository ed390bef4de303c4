"""The Dot's own tools: the runtime's MCP client over the device socket.

After the device's hello (when it announces `features.mcp`), `DeviceMcp`
sends `initialize` (with the vision URL and a short-lived token when the agent
allows vision) and pages `tools/list` through `nextCursor`. The firmware opens
a new socket for every turn, so the list is kept in `DeviceToolCache`, keyed by
device and firmware version: a later socket sends only `initialize` (which
also hands the device a fresh vision token) and has its tools at once. The
list is fetched again when `initialize` reports another firmware version or
the device sends `notifications/tools/list_changed`.

Requests go out as `Urgent` outbox frames (ahead of queued audio, dropping
none); answers arrive through `on_payload` from the session's receive loop and
resolve the waiting future by id. A `tools/call` has a timeout; its result or
JSON-RPC error becomes the model's tool result. Notifications are reported to
`on_event` for the session's records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runtime.protocol import mcp
from runtime.protocol.errors import ProtocolError
from runtime.tools.box import ToolDef, ToolError, ToolOutput

log = logging.getLogger("opendot.runtime.tools.device")

REQUEST_TIMEOUT_S = 5.0  # initialize and each tools/list page
STATUS_TOOL = "self.get_device_status"

CacheKey = tuple[str, str, bool]  # device uuid, firmware version, with user-only tools


class DeviceToolCache:
    """Tool lists by (device, firmware version, user-only tools listed), LRU-bounded."""

    def __init__(self, max_devices: int = 10_000) -> None:
        self._items: OrderedDict[CacheKey, tuple[mcp.DeviceTool, ...]] = OrderedDict()
        self._max = max_devices

    def get(self, key: CacheKey) -> tuple[mcp.DeviceTool, ...] | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: CacheKey, tools: Sequence[mcp.DeviceTool]) -> None:
        self._items[key] = tuple(tools)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def forget(self, device_uuid: str) -> None:
        for key in [k for k in self._items if k[0] == device_uuid]:
            del self._items[key]


class DeviceMcp:
    """One socket's MCP client; a `ToolSource` for the session's `ToolBox`."""

    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],
        *,
        device_uuid: str,
        firmware_version: str,
        cache: DeviceToolCache,
        allow_user_only: Sequence[str] = (),
        deny: Sequence[str] = (),
        vision: Callable[[], mcp.Vision | None] | None = None,
        on_event: Callable[[str, Mapping[str, Any]], None] | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self._send = send
        self.device_uuid = device_uuid
        self.firmware_version = firmware_version
        self._cache = cache
        self._allow_user_only = frozenset(allow_user_only)
        self._deny = frozenset(deny)
        self._vision = vision
        self._on_event = on_event
        self._timeout = request_timeout_s
        self._next_id = 1
        self._pending: dict[int, asyncio.Future[mcp.Result | mcp.Error]] = {}
        self._all: tuple[mcp.DeviceTool, ...] = ()
        self.ready = asyncio.Event()
        self.cached = False  # this socket took its list from the cache
        self.server: mcp.ServerInfo | None = None
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------

    @property
    def _key(self) -> CacheKey:
        return (self.device_uuid, self.firmware_version, bool(self._allow_user_only))

    def start(self) -> None:
        """Begin the handshake (after the server hello went out)."""
        cached = self._cache.get(self._key)
        if cached is not None:
            self._all, self.cached = cached, True
            self.ready.set()
        self._task = asyncio.create_task(self._handshake(), name="device-mcp")

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()
        self.ready.set()

    def refresh_vision(self) -> None:
        """Send `initialize` again so the device holds a fresh vision token."""
        vision = self._vision() if self._vision is not None else None
        if vision is not None:
            request = mcp.initialize(self._take_id(), vision)
            future = self._request_nowait(request)
            future.add_done_callback(lambda _f: self._pending.pop(request.id, None))

    async def _handshake(self) -> None:
        try:
            init = await self._request(
                lambda rid: mcp.initialize(rid, self._vision() if self._vision else None)
            )
            if isinstance(init, mcp.Result):
                self.server = mcp.parse_initialize(init.result)
                reported = self.server.version
                if reported and reported != self.firmware_version:
                    self.firmware_version = reported
                    self.cached = False
            if not self.cached or self._cache.get(self._key) is None:
                await self._list()
        except (TimeoutError, ToolError) as exc:
            self._event("mcp_error", {"message": f"device tools unavailable: {exc}"})
        finally:
            self.ready.set()

    async def _list(self) -> None:
        tools: list[mcp.DeviceTool] = []
        cursor = ""
        with_user = bool(self._allow_user_only)
        for _ in range(mcp.MAX_PAGES):
            # `build` runs before the first await, so the current cursor is the one sent.
            answer = await self._request(
                lambda rid: mcp.tools_list(rid, cursor, with_user_tools=with_user)  # noqa: B023
            )
            if isinstance(answer, mcp.Error):
                raise ToolError(f"tools/list failed: {answer.message}")
            page = mcp.parse_tools_page(answer.result)
            if isinstance(page, ProtocolError):
                raise ToolError(page.message)
            tools += page.tools
            for reason in page.dropped:
                self._event("mcp_tool_dropped", {"reason": reason})
            if page.next_cursor is None or len(tools) >= mcp.MAX_TOOLS:
                break
            cursor = page.next_cursor
        self._all = tuple(tools[: mcp.MAX_TOOLS])
        self.cached = False
        self._cache.put(self._key, self._all)
        self._event("mcp_tools", {"count": len(self._all), "firmware": self.firmware_version})

    # --- requests -------------------------------------------------------------------

    def _take_id(self) -> int:
        rid, self._next_id = self._next_id, self._next_id + 1
        return rid

    def _request_nowait(self, request: mcp.Request) -> asyncio.Future[mcp.Result | mcp.Error]:
        future: asyncio.Future[mcp.Result | mcp.Error] = asyncio.get_running_loop().create_future()
        self._pending[request.id] = future
        self._send(request.to_payload())
        return future

    async def _request(
        self, build: Callable[[int], mcp.Request], limit_s: float | None = None
    ) -> mcp.Result | mcp.Error:
        request = build(self._take_id())
        future = self._request_nowait(request)
        try:
            async with asyncio.timeout(limit_s or self._timeout):
                return await future
        finally:
            self._pending.pop(request.id, None)

    def on_payload(self, payload: object) -> None:
        """An `mcp` message from the device (called by the session's receive loop)."""
        message = mcp.parse_payload(payload)
        if isinstance(message, ProtocolError):
            self._event("mcp_error", {"message": message.message})
        elif isinstance(message, mcp.Notification):
            self._event("mcp_notification", {"method": message.method})
            if message.method == "notifications/tools/list_changed":
                self._cache.forget(self.device_uuid)
                if self._task is None or self._task.done():
                    self._task = asyncio.create_task(self._relist(), name="device-mcp-relist")
        elif isinstance(message, mcp.Request):
            # The firmware makes no requests of its client; say so, as JSON-RPC asks.
            error = mcp.Error(
                message.id, f"{message.method} is not supported", mcp.METHOD_NOT_FOUND
            )
            self._send(error.to_payload())
        else:
            future = self._pending.get(message.id) if message.id is not None else None
            if future is not None and not future.done():
                future.set_result(message)

    async def _relist(self) -> None:
        with contextlib.suppress(TimeoutError, ToolError):
            await self._list()

    # --- ToolSource -----------------------------------------------------------------

    def offered(self) -> list[mcp.DeviceTool]:
        return [
            t
            for t in self._all
            if t.name not in self._deny and (not t.user_only or t.name in self._allow_user_only)
        ]

    def has(self, name: str) -> bool:
        return any(t.name == name for t in self.offered())

    def tools(self) -> Sequence[ToolDef]:
        return [
            ToolDef(f"device:{t.name}", t.name, "device", t.description, t.input_schema)
            for t in self.offered()
        ]

    async def call(self, name: str, arguments: Mapping[str, Any], limit_s: float) -> ToolOutput:
        answer = await self._request(lambda rid: mcp.tools_call(rid, name, arguments), limit_s)
        result = (
            mcp.call_error(answer)
            if isinstance(answer, mcp.Error)
            else mcp.parse_call_result(answer.result)
        )
        return ToolOutput(result.text, result.is_error)

    async def invoke(self, tool: ToolDef, arguments: dict[str, Any]) -> ToolOutput:
        # The box's own timeout bounds the whole call; this one only frees the id.
        return await self.call(tool.name, arguments, tool.timeout_s or 60.0)

    def _event(self, kind: str, payload: Mapping[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(kind, payload)
