"""A browser `/voice` session end to end: the user signs up and mints a voice
session through the real platform API, the browser connects with the URL it is
given and speaks (espeak-ng PCM16 16 kHz) to the real offline engines (Silero
VAD, faster-whisper, the echo LLM, local TTS); every event comes back, the
audio in both deliveries, the token works once, and the turn is stored."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from runtime.audio.containers import parse_wav
from runtime.audio.synthetic import speech_pcm
from runtime.composition import pipeline_factory
from runtime.pipeline.interfaces import Pipeline
from shared import agent_config
from tests.conftest import TEST_TIME_UNIT
from tests.functions.conftest import auth, signup
from tests.runtime.harness import RunningRuntime
from tests.runtime.platform_api import create_agent, records_flushed, runtime_on_api

T = TEST_TIME_UNIT
PIECE = 16_000 * 2 * 100 // 1000  # 100 ms of PCM per message, as a browser sends it


def local_engines() -> Any:
    factory = pipeline_factory()

    def make(agent: Any) -> Pipeline:
        return factory(agent, {}, None)

    return make


async def voice_url(api: httpx.AsyncClient, user: dict[str, str], agent_id: str) -> str:
    minted = await api.post(
        "/api/runtime/voice-sessions", headers=auth(user), json={"agentId": agent_id}
    )
    assert minted.status_code == 201, minted.text
    return str(minted.json()["voiceSession"]["url"])


def to_runtime(url: str, rt: RunningRuntime) -> str:
    """The API hands out the public URL; point its host and port at the test runtime."""
    parts = urlsplit(url)
    assert parts.path == "/voice" and parts.query.startswith("voice_token=od_vt_"), url
    return urlunsplit((parts.scheme, f"127.0.0.1:{rt.port}", parts.path, parts.query, ""))


async def set_delivery(
    api: httpx.AsyncClient, user: dict[str, str], agent_id: str, delivery: str
) -> None:
    response = await api.put(
        f"/api/agents/{agent_id}",
        headers=auth(user),
        json={"pipeline": [{"id": "tts", "settings": {"delivery": delivery}}]},
    )
    assert response.status_code == 200, response.text
    agent = response.json()["agent"]
    assert agent_config.setting_value(agent, "tts", "delivery") == delivery


async def events_until(ws: ClientConnection, kind: str, within: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        message = await asyncio.wait_for(ws.recv(), timeout=within)
        assert isinstance(message, str), "the runtime sends browsers JSON only"
        event = json.loads(message)
        out.append(event)
        if event["type"] == kind:
            return out


async def spoken_turn(url: str, speech: bytes, agent_id: str) -> list[dict[str, Any]]:
    async with connect(url, compression=None) as ws:
        opening = await events_until(ws, "runtime_ready", 30 * T)
        assert opening[0]["type"] == "runtime_connected"
        assert opening[0]["agentId"] == agent_id
        assert opening[0]["agentName"] == "Browser voice agent"
        for start in range(0, len(speech), PIECE):
            await ws.send(speech[start : start + PIECE])
        return await events_until(ws, "assistant_end", 120 * T)


@pytest.mark.parametrize("delivery", ["chunked_file", "pcm_stream"])
async def test_browser_voice_session_through_the_real_api(
    api: httpx.AsyncClient, api_app: Any, database_url: str, delivery: str
) -> None:
    # The tail outlasts the semantic end of turn's longest pause (1.5 s): espeak-ng's flat
    # voice does not always sound finished to the model.
    speech = speech_pcm("What is the weather like today?", lead_ms=400, tail_ms=2400)
    user = await signup(api)
    agent_id = await create_agent(api, user, "Browser voice agent")
    await set_delivery(api, user, agent_id, delivery)

    async with runtime_on_api(local_engines(), api_app) as rt:
        url = to_runtime(await voice_url(api, user, agent_id), rt)
        events = await spoken_turn(url, speech, agent_id)

        # The token was consumed by the first connection.
        with pytest.raises(InvalidStatus) as refused:
            await connect(url)
        assert refused.value.response.status_code == 401
        await records_flushed(rt)

    kinds = [e["type"] for e in events]
    for kind in ("vad_event", "stt_final", "user_final", "assistant_start", "assistant_delta"):
        assert kind in kinds, (kind, kinds)
    assert kinds.index("user_final") < kinds.index("assistant_start")
    heard = next(e for e in events if e["type"] == "user_final")["text"]
    assert "weather" in heard.lower()
    assert "weather" in next(e for e in events if e["type"] == "stt_final")["text"].lower()
    reply = next(e for e in events if e["type"] == "assistant_text")["text"]
    assert "weather" in reply.lower()  # the echo LLM says what it heard
    end = events[-1]
    assert end["outcome"] == "completed"
    turn_id = end["turnId"]

    if delivery == "chunked_file":
        assert "assistant_pcm_delta" not in kinds
        audio = [e for e in events if e["type"] == "assistant_audio"]
        assert audio and [a["chunkIndex"] for a in audio] == list(range(len(audio)))
        for item in audio:
            data = base64.b64decode(item["audioBase64"])
            if item["mimeType"] == "audio/wav":
                pcm, _rate = parse_wav(data)
                assert len(pcm) > 1000
            else:
                assert item["mimeType"] == "audio/mpeg"
                assert data[:3] == b"ID3" or data[0] == 0xFF  # an MP3 frame sync
    else:
        assert "assistant_audio" not in kinds
        deltas = [e for e in events if e["type"] == "assistant_pcm_delta"]
        assert deltas and all(d["turnId"] == turn_id for d in deltas)
        pcm = b"".join(base64.b64decode(d["pcmBase64"]) for d in deltas)
        rate = deltas[0]["sampleRate"]
        assert len(pcm) % 2 == 0 and len(pcm) / 2 / rate > 0.5  # over half a second

    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "select t.transcript, t.reply_text, t.outcome, t.speech_end_at, t.stt_final_at,"
            " t.first_audio_at, s.kind, s.user_id, s.agent_id from public.voice_turns t"
            " join public.voice_sessions s on s.id = t.session_id where t.id = $1",
            uuid.UUID(turn_id),
        )
    finally:
        await conn.close()
    assert row is not None, "the turn was not persisted"
    assert row["outcome"] == "completed" and row["kind"] == "browser"
    assert str(row["user_id"]) == user["id"] and str(row["agent_id"]) == agent_id
    assert row["transcript"] == heard and row["reply_text"] == reply
    assert row["speech_end_at"] <= row["stt_final_at"] <= row["first_audio_at"]
