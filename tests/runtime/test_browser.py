"""Browser /voice sessions against the real runtime with provider doubles."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from runtime.audio.containers import parse_wav
from runtime.pipeline.doubles import (
    FunctionTTS,
    chunked,
    double_pipeline,
    loud_frame,
    silence_frame,
)
from runtime.pipeline.interfaces import Pipeline
from runtime.protocol.browser import CONFIGURE_REFUSED
from shared.agent_config import default_stages
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import FakePlatform, running_runtime

T = TEST_TIME_UNIT
UTTERANCE = loud_frame(600) + silence_frame(600)


def agent_with(delivery: str, encoding: str) -> dict[str, Any]:
    stages = default_stages()
    for stage in stages:
        if stage["id"] == "tts":
            for setting in stage["settings"]:
                if setting["key"] == "delivery":
                    setting["value"] = delivery
                if setting["key"] == "encoding":
                    setting["value"] = encoding
    return {"id": "agent-1", "name": "Browser agent", "pipeline": stages}


def make_pipeline(_agent: Any) -> Pipeline:
    return double_pipeline(chunked("Hi there.", "How are you?"), "hello runtime")


async def events_until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10 * T))
        out.append(message)
        if message["type"] == kind:
            return out


async def send_pcm(ws: ClientConnection, pcm: bytes, piece: int = 4096) -> None:
    for i in range(0, len(pcm), piece):
        await ws.send(pcm[i : i + piece])


@pytest.mark.parametrize(
    ("delivery", "encoding", "audio_type"),
    [
        ("chunked_file", "linear16", "assistant_audio"),
        ("chunked_file", "mp3", "assistant_audio"),
        ("pcm_stream", "linear16", "assistant_pcm_delta"),
    ],
)
async def test_browser_turn_emits_every_event(
    delivery: str, encoding: str, audio_type: str
) -> None:
    platform = FakePlatform()
    token = platform.add_voice_token(agent_with(delivery, encoding))
    async with (
        running_runtime(make_pipeline, platform) as rt,
        connect(f"{rt.ws_base}/voice?voice_token={token}", compression=None) as ws,
    ):
        first = await events_until(ws, "runtime_ready")
        assert first[0]["type"] == "runtime_connected"
        assert first[0]["agentName"] == "Browser agent"
        await send_pcm(ws, UTTERANCE)
        events = await events_until(ws, "assistant_end")

    kinds = [e["type"] for e in events]
    for kind in (
        "vad_event",
        "stt_final",
        "user_final",
        "assistant_start",
        "assistant_delta",
        audio_type,
        "assistant_text",
        "timeline",
        "assistant_end",
    ):
        assert kind in kinds, kind
    user = next(e for e in events if e["type"] == "user_final")
    assert user["text"] == "hello runtime"
    assert (
        next(e for e in events if e["type"] == "assistant_text")["text"] == "Hi there. How are you?"
    )
    audio = [e for e in events if e["type"] == audio_type]
    assert [a["chunkIndex"] for a in audio][:2] == [0, 1] or audio_type == "assistant_pcm_delta"
    if audio_type == "assistant_audio":
        data = base64.b64decode(audio[0]["audioBase64"])
        if encoding == "mp3":
            assert audio[0]["mimeType"] == "audio/mpeg" and len(data) > 100
        else:
            pcm, rate = parse_wav(data)
            assert rate == 24000 and len(pcm) > 1000
    else:
        assert audio[0]["sampleRate"] == 24000
        assert len(base64.b64decode(audio[0]["pcmBase64"])) > 1000
    assert events[-1]["outcome"] == "completed"


async def test_voice_token_is_consumed_once_and_bad_tokens_get_401() -> None:
    platform = FakePlatform()
    token = platform.add_voice_token()
    async with (
        running_runtime(make_pipeline, platform) as rt,
        connect(f"{rt.ws_base}/voice?voice_token={token}") as ws,
    ):
        await events_until(ws, "runtime_ready")

        with pytest.raises(InvalidStatus) as info:
            await connect(f"{rt.ws_base}/voice?voice_token={token}")
        assert info.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as info:
            await connect(f"{rt.ws_base}/voice")
        assert info.value.response.status_code == 401


async def test_reset_configure_interrupt_and_memory() -> None:
    platform = FakePlatform()
    token = platform.add_voice_token(agent_with("chunked_file", "linear16"))
    seen: list[int] = []

    def make(_agent: Any) -> Pipeline:
        def reply(request: Any) -> str:
            seen.append(len(request.messages))
            return chunked(*[f"Part {i} of a long reply." for i in range(30)])

        return double_pipeline(reply, "remember me")

    async with (
        running_runtime(make, platform, RUNTIME_BROWSER_SEND_QUEUE=2) as rt,
        connect(f"{rt.ws_base}/voice?voice_token={token}") as ws,
    ):
        await events_until(ws, "runtime_ready")
        await ws.send('{"type":"configure","agent":"x"}')
        error = await events_until(ws, "error")
        assert error[-1]["message"] == CONFIGURE_REFUSED
        # First turn runs to completion; the second remembers it.
        await send_pcm(ws, UTTERANCE)
        await events_until(ws, "assistant_end")
        await send_pcm(ws, UTTERANCE)
        await events_until(ws, "assistant_start")
        await ws.send('{"type":"interrupt"}')
        end = (await events_until(ws, "assistant_end"))[-1]
        assert end["outcome"] == "interrupted"
        await ws.send('{"type":"reset"}')
        await events_until(ws, "reset_done")
        await send_pcm(ws, UTTERANCE)
        await events_until(ws, "assistant_end")

    assert seen == [1, 3, 1]


async def test_slow_reader_gets_backpressure_not_unbounded_memory() -> None:
    platform = FakePlatform()
    token = platform.add_voice_token(agent_with("pcm_stream", "linear16"))

    def make(_agent: Any) -> Pipeline:
        # ~100 chunks of 4 s audio: far more than the socket buffers hold.
        reply = chunked(*[f"Chunk {i} with words." for i in range(100)])
        return double_pipeline(reply, "go", tts=FunctionTTS(ms_per_char=400))

    async with (
        running_runtime(make, platform, RUNTIME_BROWSER_SEND_QUEUE=4) as rt,
        connect(f"{rt.ws_base}/voice?voice_token={token}", max_queue=1) as ws,
    ):
        await events_until(ws, "runtime_ready")
        await send_pcm(ws, UTTERANCE)
        await asyncio.sleep(0.5 * T)  # do not read: the runtime must hold back
        (session,) = rt.app.ctx.registry.sessions.values()
        assert session.busy  # held back by the reader, not finished
        assert session.outbox.queued <= 4  # type: ignore[attr-defined]
        events = await events_until(ws, "assistant_end")
        assert events[-1]["outcome"] == "completed"


async def test_reset_during_a_reply_stops_it_and_forgets_the_conversation() -> None:
    platform = FakePlatform()
    token = platform.add_voice_token(agent_with("pcm_stream", "linear16"))
    seen: list[list[str]] = []

    def make(_agent: Any) -> Pipeline:
        def reply(request: Any) -> str:
            seen.append([m.content for m in request.messages])
            return chunked(*[f"Reply {len(seen)} part {i}." for i in range(20)])

        # Slow speech keeps the second reply playing while the reset arrives.
        return double_pipeline(reply, "remember me", tts=FunctionTTS(ms_per_char=100))

    async with (
        running_runtime(make, platform, RUNTIME_BROWSER_SEND_QUEUE=2) as rt,
        connect(f"{rt.ws_base}/voice?voice_token={token}") as ws,
    ):
        await events_until(ws, "runtime_ready")
        await send_pcm(ws, UTTERANCE)
        assert (await events_until(ws, "assistant_end"))[-1]["outcome"] == "completed"
        await send_pcm(ws, UTTERANCE)
        await events_until(ws, "assistant_pcm_delta")
        await ws.send('{"type":"reset"}')
        after = await events_until(ws, "reset_done")
        ends = [e for e in after if e["type"] == "assistant_end"]
        assert [e["outcome"] for e in ends] == ["interrupted"]
        (session,) = rt.app.ctx.registry.sessions.values()
        assert len(session.memory) == 0  # type: ignore[attr-defined]
        await send_pcm(ws, UTTERANCE)
        assert (await events_until(ws, "assistant_end"))[-1]["outcome"] == "completed"

    # The third turn starts a new conversation: neither earlier exchange is in it.
    assert [len(s) for s in seen] == [1, 3, 1]
