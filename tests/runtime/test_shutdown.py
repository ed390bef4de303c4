"""Graceful shutdown: a running turn finishes, then sockets close with 1001."""

from __future__ import annotations

from typing import Any

from runtime.pipeline.doubles import double_pipeline, loud_frame, silence_frame
from runtime.pipeline.interfaces import Pipeline
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import DeviceClient, FakePlatform, running_runtime

T = TEST_TIME_UNIT


def make(_agent: Any) -> Pipeline:
    reply = "".join(f"<chunk>Part {i} of the answer.</chunk>" for i in range(4))
    return double_pipeline(reply, "tell me more")


async def test_shutdown_lets_the_turn_finish_then_closes_1001() -> None:
    platform = FakePlatform()
    device = platform.add_device()
    idle_device = platform.add_device()
    async with running_runtime(
        make, platform, CLOSE_DEVICE_AFTER_TURN=False, RUNTIME_SHUTDOWN_DRAIN_S=10 * T
    ) as rt:
        idle = DeviceClient(rt.ws_base, idle_device.token)
        await idle.connect()
        await idle.hello()
        client = DeviceClient(rt.ws_base, device.token)
        await client.speak(loud_frame(600) + silence_frame(600))
        await client.next_json(lambda m: m.get("state") == "sentence_start")
        rt.server.should_exit = True  # what SIGTERM does
        code, reason = await client.until_closed(within=20 * T)
        assert (code, reason) == (1001, "server shutting down")
        assert await idle.until_closed(within=20 * T) == (1001, "server shutting down")
        states = [m.get("state") for m in client.messages if m["type"] == "tts"]
        assert states[-1] == "stop"  # the reply was played to its end
        assert states.count("sentence_start") == 4
        await client.close()
        await idle.close()
    (turn,) = platform.turns.values()
    assert turn["outcome"] == "completed"  # and its record was flushed on the way out
    assert len(platform.closed) == 2
