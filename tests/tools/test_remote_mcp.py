"""Remote MCP servers through the official SDK: a real `mcp` server built in this test
process, served on loopback (allowed by the operator setting here), listed and called
with the owner's bearer secret; refused when private targets are not allowed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from runtime.tools.box import CallRecord, ToolBox
from runtime.tools.remote_mcp import RemoteMcpSource
from tests.tools.servers import serve
from tests.tools.test_webhooks import SECRET_VALUE, USER, keys


def weather_app(seen: list[str]) -> Any:
    server = MCPServer("weather")

    @server.tool()
    def forecast(city: str) -> str:
        """The forecast for a city."""
        return f"Sunny in {city}."

    @server.tool()
    def alarm(level: int) -> str:
        """Raise an alarm."""
        raise ToolError("alarms are off")

    app = server.streamable_http_app()

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            seen.append(headers.get(b"authorization", b"").decode())
        await app(scope, receive, send)

    return recording


@pytest.fixture
async def weather() -> AsyncIterator[tuple[str, list[str]]]:
    seen: list[str] = []
    async with serve(weather_app(seen)) as base:
        yield base + "/mcp", seen


def source(url: str, *, allow_private: bool, **server: Any) -> RemoteMcpSource:
    resolver, _ = keys()
    config = {"name": "wx", "url": url, "bearerSecret": "GARAGE_TOKEN", **server}
    return RemoteMcpSource([config], resolver, owner=USER + url, allow_private=allow_private)


async def test_list_and_call_through_the_sdk(weather: tuple[str, list[str]]) -> None:
    url, seen = weather
    remote = source(url, allow_private=True)
    await remote.refresh()
    assert remote.errors == []
    records: list[CallRecord] = []
    box = ToolBox([remote], on_call=records.append)
    specs = {s.name: s for s in box.specs()}
    assert set(specs) == {"wx_forecast", "wx_alarm"}
    assert specs["wx_forecast"].parameters["required"] == ["city"]
    result = await box.call("wx_forecast", '{"city": "Bern"}', "c1")
    assert (result.output, result.is_error) == ("Sunny in Bern.", False)
    failed = await box.call("wx_alarm", '{"level": 3}')
    assert failed.is_error and "alarms are off" in failed.output
    refused = await box.call("wx_forecast", "{}")  # checked before anything is sent
    assert refused.output == "Not called: city is required."
    assert seen and all(h == f"Bearer {SECRET_VALUE}" for h in seen)
    assert [r.source for r in records] == ["mcp", "mcp", "mcp"]


async def test_allow_list_limits_the_offered_tools(weather: tuple[str, list[str]]) -> None:
    url, _ = weather
    remote = source(url, allow_private=True, allow=["forecast"])
    await remote.refresh()
    assert [t.name for t in remote.tools()] == ["wx.forecast"]


async def test_loopback_is_refused_unless_allowed(weather: tuple[str, list[str]]) -> None:
    url, seen = weather
    remote = source(url, allow_private=False)
    await remote.refresh()
    assert remote.tools() == []
    assert len(remote.errors) == 1 and "loopback address" in remote.errors[0]
    assert seen == []  # nothing reached the server
