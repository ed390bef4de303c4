"""The runtime's MCP client for one device socket, driven without a socket: the
device answers through `on_payload`, as the session's receive loop delivers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.protocol import mcp
from runtime.simulator.mcp_tools import SimulatedTools
from runtime.tools.device import DeviceMcp, DeviceToolCache
from tests.conftest import TEST_TIME_UNIT


class Wire:
    """Connects a `DeviceMcp` to the simulator's MCP server in memory."""

    def __init__(self, tools: SimulatedTools, *, answer: bool = True) -> None:
        self.tools = tools
        self.answer = answer
        self.sent: list[dict[str, Any]] = []
        self.client: DeviceMcp | None = None
        self.events: list[tuple[str, dict[str, Any]]] = []

    def send(self, payload: dict[str, Any]) -> None:
        self.sent.append(payload)
        if self.answer:
            asyncio.get_running_loop().create_task(self._reply(payload))

    async def _reply(self, payload: dict[str, Any]) -> None:
        reply = await self.tools.handle(payload)
        if reply is not None and self.client is not None:
            self.client.on_payload(reply)

    def connect(self, cache: DeviceToolCache, version: str = "1.7.2", **kw: Any) -> DeviceMcp:
        self.client = DeviceMcp(
            self.send,
            device_uuid="dev-1",
            firmware_version=version,
            cache=cache,
            on_event=lambda kind, payload: self.events.append((kind, dict(payload))),
            request_timeout_s=0.5 * TEST_TIME_UNIT,
            **kw,
        )
        self.client.start()
        return self.client


async def _ready(client: DeviceMcp) -> None:
    await asyncio.wait_for(client.ready.wait(), 5 * TEST_TIME_UNIT)
    if client._task is not None:  # let the handshake finish (the cache hit is ready at once)
        await asyncio.wait_for(client._task, 5 * TEST_TIME_UNIT)


async def test_handshake_pages_then_caches_per_firmware_version() -> None:
    cache = DeviceToolCache()
    first = Wire(SimulatedTools(page_size=1))
    client = first.connect(cache)
    await _ready(client)
    assert [p["method"] for p in first.sent] == ["initialize"] + ["tools/list"] * 4
    assert [p["params"]["cursor"] for p in first.sent[1:]] == [
        "",
        "self.audio_speaker.set_volume",
        "self.screen.set_brightness",
        "self.camera.take_photo",
    ]
    assert len(client.tools()) == 4 and not client.cached
    assert client.server == mcp.ServerInfo("2024-11-05", "opendot-simulator", "1.7.2")
    # The next socket of the same firmware: initialize only, tools ready at once.
    second = Wire(SimulatedTools())
    again = second.connect(cache)
    assert again.ready.is_set() and again.cached and len(again.tools()) == 4
    await _ready(again)
    assert [p["method"] for p in second.sent] == ["initialize"]
    # A firmware update shows in initialize: the list is fetched again.
    third = Wire(SimulatedTools(firmware_version="1.8.0"))
    upgraded = third.connect(cache)
    await _ready(upgraded)
    assert [p["method"] for p in third.sent] == ["initialize", "tools/list", "tools/list"]
    assert upgraded.firmware_version == "1.8.0" and not upgraded.cached


async def test_calls_results_errors_and_timeouts() -> None:
    wire = Wire(SimulatedTools())
    client = wire.connect(DeviceToolCache())
    await _ready(client)
    ok = await client.call("self.audio_speaker.set_volume", {"volume": 10}, 1.0)
    assert (ok.text, ok.is_error) == ("true", False) and wire.tools.volume == 10
    refused = await client.call("self.audio_speaker.set_volume", {"volume": 500}, 1.0)
    assert refused.is_error and "out of range" in refused.text
    unknown = await client.call("self.nope", {}, 1.0)
    assert (unknown.text, unknown.is_error) == ("error: Unknown tool: self.nope", True)
    no_vision = await client.call("self.camera.take_photo", {"question": "what?"}, 1.0)
    assert no_vision.text == "error: Image explain URL or token is not set"
    wire.answer = False
    with pytest.raises(TimeoutError):
        await client.call("self.get_device_status", {}, 0.05)
    assert client._pending == {}


async def test_notifications_requests_and_garbage() -> None:
    cache = DeviceToolCache()
    wire = Wire(SimulatedTools())
    client = wire.connect(cache)
    await _ready(client)
    sent = len(wire.sent)
    client.on_payload({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
    await _ready(client)
    assert [p["method"] for p in wire.sent[sent:]] == ["tools/list", "tools/list"]
    client.on_payload({"jsonrpc": "2.0", "method": "notifications/state_changed", "params": {}})
    client.on_payload({"jsonrpc": "2.0", "method": "ping", "id": 99})
    assert wire.sent[-1] == {
        "jsonrpc": "2.0",
        "id": 99,
        "error": {"message": "ping is not supported", "code": -32601},
    }
    client.on_payload("garbage")
    client.on_payload({"jsonrpc": "2.0", "id": 12345, "result": {}})  # nobody waits: ignored
    kinds = [kind for kind, _ in wire.events]
    assert kinds.count("mcp_notification") == 2 and "mcp_error" in kinds
    client.close()
    assert client.ready.is_set()


async def test_a_silent_device_leaves_no_tools_and_an_event() -> None:
    wire = Wire(SimulatedTools(), answer=False)
    client = wire.connect(DeviceToolCache())
    await _ready(client)
    assert client.tools() == []
    assert wire.events[-1][0] == "mcp_error"


async def test_user_only_and_denied_tools() -> None:
    wire = Wire(SimulatedTools())
    client = wire.connect(
        DeviceToolCache(), allow_user_only=["self.reboot"], deny=["self.camera.take_photo"]
    )
    await _ready(client)
    assert wire.sent[1]["params"]["withUserTools"] is True
    names = [t.name for t in client.tools()]
    assert "self.reboot" in names and "self.camera.take_photo" not in names


def test_cache_is_bounded() -> None:
    cache = DeviceToolCache(max_devices=2)
    for n in range(3):
        cache.put((f"d{n}", "1", False), ())
    assert cache.get(("d0", "1", False)) is None and cache.get(("d2", "1", False)) == ()
    cache.forget("d2")
    assert cache.get(("d2", "1", False)) is None
