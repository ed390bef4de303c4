"""Timeline spans in the original console's vocabulary, on /voice and in the turn's
record (docs/protocols.md §4, "Timeline"; issue 11)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from runtime.pipeline.doubles import chunked, double_pipeline, loud_frame, silence_frame
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import DeviceClient, FakePlatform, running_runtime

T = TEST_TIME_UNIT
UTTERANCE = loud_frame(600) + silence_frame(600)
CONSOLE_STAGES = {
    "stt_final",
    "llm_request",
    "llm_first_delta",
    "llm_done",
    "tts_request",
    "tts_chunk",
    "tts_done",
    "first_audio",
}


def _pipeline(_agent: Any) -> Any:
    return double_pipeline(chunked("Hi there.", "How are you?"), "hello runtime")


async def _until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        out.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=10 * T)))
        if out[-1]["type"] == kind:
            return out


async def _stored_turns(platform: FakePlatform, count: int) -> list[dict[str, Any]]:
    for _ in range(int(200 * T)):
        if len(platform.turns) >= count:
            break
        await asyncio.sleep(0.02)
    return list(platform.turns.values())


async def test_a_browser_turn_sends_and_stores_the_console_timeline() -> None:
    platform = FakePlatform()
    token = platform.add_voice_token()
    async with (
        running_runtime(_pipeline, platform) as rt,
        connect(f"{rt.ws_base}/voice?voice_token={token}", compression=None) as ws,
    ):
        await _until(ws, "runtime_ready")
        for i in range(0, len(UTTERANCE), 4096):
            await ws.send(UTTERANCE[i : i + 4096])
        events = await _until(ws, "assistant_end")
        (turn,) = await _stored_turns(platform, 1)

    kinds = [e["type"] for e in events]
    spans = [e for e in events if e["type"] == "timeline"]
    # After the reply's text, before its end, as the console expects.
    assert kinds.index("assistant_text") < kinds.index("timeline") < kinds.index("assistant_end")
    assert {s["stage"] for s in spans} == CONSOLE_STAGES
    turn_id = events[-1]["turnId"]
    for span in spans:
        assert span["turnId"] == turn_id
        assert span["spanId"] and span["label"]
        assert 0 <= span["startMs"] <= span["endMs"] == span["elapsedMs"]
    by_id = {s["spanId"]: s for s in spans}
    assert len(by_id) == len(spans)  # one lane per span
    chunks = [s for s in spans if s["stage"] == "tts_chunk"]
    assert [c["spanId"] for c in chunks] == ["tts-chunk-0", "tts-chunk-1"]
    assert all(c["bytes"] > 0 for c in chunks)
    assert by_id["llm-first-token"]["startMs"] == by_id["llm-first-token"]["endMs"]
    assert by_id["stt-final"]["startMs"] == 0
    assert [s["startMs"] for s in spans] == sorted(s["startMs"] for s in spans)
    # The record keeps the same spans, for the console's History.
    stored = [{k: v for k, v in s.items() if v is not None} for s in turn["timeline"]]
    assert stored == [{k: v for k, v in s.items() if k not in ("type", "turnId")} for s in spans]


async def test_a_device_turn_stores_its_timeline_too() -> None:
    platform = FakePlatform()
    device = platform.add_device()
    async with running_runtime(_pipeline, platform) as rt:
        client = DeviceClient(rt.ws_base, device.token)
        await client.speak(UTTERANCE)
        await client.until_closed()
        (turn,) = await _stored_turns(platform, 1)
        await client.close()
    stages = [s["stage"] for s in turn["timeline"]]
    assert set(stages) == CONSOLE_STAGES
    first_audio = next(s for s in turn["timeline"] if s["stage"] == "first_audio")
    assert first_audio["startMs"] == first_audio["endMs"] > 0
