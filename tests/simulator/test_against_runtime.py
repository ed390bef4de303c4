"""The simulator against the real runtime (uvicorn, real sockets) with provider doubles.

The platform's internal API is the runtime team's in-memory fake
(`tests/runtime/harness.py`); everything between the simulator and the
pipeline seams is real: `/ota/` proxying, the `/ws` upgrade, framing v1/v2/v3,
Opus both ways, close-after-turn and memory across sockets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.pipeline.doubles import double_pipeline, loud_frame, silence_frame
from runtime.pipeline.interfaces import LlmRequest, Pipeline
from runtime.simulator.device import SimulatedDevice
from runtime.simulator.identity import DeviceIdentity, DeviceStore
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import FakePlatform, running_runtime

T = TEST_TIME_UNIT
UTTERANCE = silence_frame(120) + loud_frame(600)


def remembering_pipeline(_agent: Any) -> Pipeline:
    def reply(request: LlmRequest) -> str:
        earlier = [m for m in request.messages if m.role == "user"]
        return f"<chunk>I have heard {len(earlier)} questions.</chunk><chunk>Ask more.</chunk>"

    return double_pipeline(reply, "what did I ask")


@pytest.mark.parametrize("version", [1, 2, 3])
async def test_two_turns_over_the_real_runtime(tmp_path: Path, version: int) -> None:
    platform = FakePlatform()
    registered = platform.add_device()
    async with running_runtime(remembering_pipeline, platform) as rt:
        identity = DeviceIdentity(mac="02:aa:bb:cc:dd:01")
        identity.websocket["token"] = registered.token
        device = SimulatedDevice(
            rt.http_base,
            identity,
            store=DeviceStore(tmp_path),
            protocol_version=version,
            pace=0,
            hello_timeout=10 * T,
        )
        async with device:
            answer = await device.provision()
            assert answer.activation is None
            assert answer.websocket_url == f"{rt.ws_base}/ws"
            first = await device.turn(UTTERANCE, reply_timeout=20 * T)
            second = await device.turn(UTTERANCE, reply_timeout=20 * T)

    bootstrap = platform.bootstraps[0]
    assert bootstrap["deviceId"] == identity.mac
    assert bootstrap["authorization"] == f"Bearer {registered.token}"
    for turn in (first, second):
        assert turn.transcript == "what did I ask"
        assert turn.tts_started and turn.tts_stopped
        assert turn.frames_after_stop == 0 and not turn.protocol_errors
        samples = np.frombuffer(turn.reply_pcm, dtype="<i2")
        assert samples.size and np.abs(samples).max() > 500
        assert turn.closed is not None and turn.closed[0] == 1000  # close-after-turn
    assert first.sentences == ["I have heard 1 questions.", "Ask more."]
    # The second socket remembers the first turn's question (memory across sockets).
    assert second.sentences[0] == "I have heard 2 questions."


def _long_reply(_agent: Any) -> Pipeline:
    words = "".join(f"<chunk>Sentence number {i} of a long reply.</chunk>" for i in range(30))
    return double_pipeline(words, "tell me a story")


async def test_abort_through_the_real_runtime(tmp_path: Path) -> None:
    platform = FakePlatform()
    registered = platform.add_device()
    async with running_runtime(_long_reply, platform) as rt:
        identity = DeviceIdentity(mac="02:aa:bb:cc:dd:02")
        identity.websocket.update(token=registered.token, url=f"{rt.ws_base}/ws")
        async with SimulatedDevice(rt.http_base, identity, pace=0) as device:
            turn = await device.turn(UTTERANCE, abort_after=0.3 * T, reply_timeout=20 * T)
    assert turn.aborted and turn.tts_stopped
    assert turn.frames_after_stop == 0
    assert len(turn.sentences) < 30
