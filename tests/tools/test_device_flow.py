"""The Dot's own tools through the real runtime: the simulator (real sockets, Opus,
its MCP server) against uvicorn, with the labelled echo model's tool demo as the
model. Covers initialize + paged tools/list, the per-firmware cache across the
per-turn sockets, tools/call, user-only tools, built-ins and the call events."""

from __future__ import annotations

import dataclasses
from typing import Any

from runtime.pipeline.doubles import double_pipeline, loud_frame, silence_frame
from runtime.pipeline.interfaces import LlmRequest, Pipeline
from runtime.providers.echo_llm import TOOL_LABEL, EchoLLM
from runtime.simulator.device import SimulatedDevice
from runtime.simulator.identity import DeviceIdentity
from runtime.simulator.mcp_tools import SimulatedTools
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import FakePlatform, running_runtime

T = TEST_TIME_UNIT
UTTERANCE = silence_frame(120) + loud_frame(600)


class RecordingEcho(EchoLLM):
    def __init__(self) -> None:
        self.requests: list[LlmRequest] = []

    async def stream(self, request: LlmRequest):  # type: ignore[no-untyped-def,override]
        self.requests.append(request)
        async for out in super().stream(request):
            yield out


def pipelines(heard: list[str], llm: RecordingEcho) -> Any:
    def make(_agent: Any) -> Pipeline:
        # The scripted STT hears the next line each turn.
        return dataclasses.replace(double_pipeline("", heard.pop(0)), llm=llm)

    return make


async def _turns(
    platform: FakePlatform, device_agent: dict[str, Any] | None, lines: list[str]
) -> tuple[SimulatedTools, RecordingEcho, list[Any]]:
    llm = RecordingEcho()
    registered = platform.add_device(device_agent)
    tools = SimulatedTools(firmware_version="1.7.2")
    async with running_runtime(pipelines(list(lines), llm), platform) as rt:
        identity = DeviceIdentity(mac="02:aa:bb:cc:dd:31")
        identity.websocket.update(token=registered.token, url=f"{rt.ws_base}/ws")
        async with SimulatedDevice(rt.http_base, identity, pace=0, tools=tools) as device:
            results = [await device.turn(UTTERANCE, reply_timeout=20 * T) for _ in lines]
    return tools, llm, results


async def test_volume_tool_across_per_turn_sockets() -> None:
    platform = FakePlatform()
    tools, llm, (first, second) = await _turns(
        platform, None, ["set the volume to 40", "set the volume to 55"]
    )
    assert tools.volume == 55
    assert [c for c in tools.calls] == [
        ("self.audio_speaker.set_volume", {"volume": 40}),
        ("self.audio_speaker.set_volume", {"volume": 55}),
    ]
    # First socket: initialize and two pages of tools; the second: initialize only (cached).
    assert tools.requests == [
        "initialize",
        "tools/list",
        "tools/list",
        "tools/call",
        "initialize",
        "tools/call",
    ]
    assert first.reply_text.startswith(TOOL_LABEL) and "set the volume to 40" in first.reply_text
    assert "answered: true" in first.reply_text
    assert first.closed is not None and second.closed is not None  # one socket per turn
    offered = [t.name for t in llm.requests[0].tools]
    assert "self_audio_speaker_set_volume" in offered and "self_camera_take_photo" in offered
    assert "self_reboot" not in offered  # user-only, not allowed by the owner
    assert "get_device_status" not in offered  # the Dot's own status tool is offered instead
    assert {"get_current_time", "end_conversation", "remember_fact"} <= set(offered)
    calls = [e for e in platform.events if e["kind"] == "tool_call"]
    assert [c["payload"]["arguments"] for c in calls] == [{"volume": 40}, {"volume": 55}]
    assert all(c["payload"]["source"] == "device" and c["turnId"] for c in calls)
    assert all(c["payload"]["error"] is None and c["payload"]["resultBytes"] == 4 for c in calls)


async def test_user_only_tools_need_the_owners_consent() -> None:
    agent = {"id": "a1", "name": "A", "tools": {"device": {"allowUserOnly": ["self.reboot"]}}}
    platform = FakePlatform()
    tools, llm, _ = await _turns(platform, agent, ["hello there"])
    assert "self_reboot" in [t.name for t in llm.requests[0].tools]
    assert tools.requests[:2] == ["initialize", "tools/list"]


async def test_device_tools_can_be_switched_off() -> None:
    agent = {"id": "a2", "name": "A", "tools": {"device": {"enabled": False}}}
    tools, llm, (turn,) = await _turns(FakePlatform(), agent, ["set the volume to 40"])
    assert tools.requests == [] and tools.volume == 70
    assert "get_device_status" in [t.name for t in llm.requests[0].tools]
    assert not turn.reply_text.startswith(TOOL_LABEL)  # plain echo: no volume tool offered
