"""One device turn through the runtime with the real offline engines (no doubles):
Silero VAD, faster-whisper tiny.en, the echo LLM and Piper, via the real factory."""

from __future__ import annotations

from typing import Any

from runtime.audio.synthetic import speech_pcm
from runtime.composition import pipeline_factory
from runtime.pipeline.interfaces import Pipeline
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import (
    DeviceClient,
    FakePlatform,
    decodable,
    final_stt,
    running_runtime,
)

T = TEST_TIME_UNIT


async def test_spoken_turn_with_local_engines() -> None:
    factory = pipeline_factory()

    def make(agent: Any) -> Pipeline:
        return factory(agent, {}, None)

    platform = FakePlatform()
    device = platform.add_device()
    # The tail outlasts the semantic end of turn's longest pause (1.5 s): espeak-ng's flat
    # voice does not always sound finished to the model, and a Dot streams on anyway.
    speech = speech_pcm("What is the weather like today?", lead_ms=400, tail_ms=2400)
    async with running_runtime(make, platform) as rt:
        client = DeviceClient(rt.ws_base, device.token)
        await client.speak(speech, pace_s=0.01)
        assert await client.until_closed(within=120 * T) == (1000, "turn_complete")
        await client.close()
    assert "weather" in final_stt(client.messages).lower()
    assert len(client.packets) > 10
    assert decodable(client.packets) == len(client.packets)
    (turn,) = platform.turns.values()
    assert turn["outcome"] == "completed"
    assert "weather" in turn["replyText"].lower()  # the echo LLM repeats what it heard
