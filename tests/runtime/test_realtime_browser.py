"""Speech-to-speech for browsers: the client-secret flow (the original console's) and
the bridged `/voice` path, against the real runtime and the loopback fake provider;
keys never travel to an origin they were not configured for."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
from openai.types.realtime import RealtimeSessionCreateRequestParam
from pydantic import TypeAdapter
from websockets.asyncio.client import ClientConnection, connect

from runtime.pipeline.doubles import double_pipeline, loud_frame, silence_frame
from runtime.pipeline.interfaces import Pipeline
from runtime.realtime.fake import FakeRealtime, running_fake
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import DeviceClient, FakePlatform, running_runtime
from tests.runtime.realtime_kit import OPERATOR_KEY, assert_schema, s2s_agent, services_for

T = TEST_TIME_UNIT
CONSOLE = "http://localhost:5173"
SESSION_SCHEMA = TypeAdapter(RealtimeSessionCreateRequestParam)


def no_pipeline(_agent: Any) -> Pipeline:
    return double_pipeline("<chunk>pipeline answer</chunk>", "pipeline heard this")


async def events_until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        message = await asyncio.wait_for(ws.recv(), timeout=10 * T)
        assert isinstance(message, str)
        event = json.loads(message)
        out.append(event)
        if event["type"] == kind:
            return out


async def test_a_bridged_voice_turn_uses_the_events_the_console_knows() -> None:
    platform = FakePlatform()
    token = platform.add_voice_token(s2s_agent())
    async with (
        running_fake(FakeRealtime(transcript="hello browser", ms_per_char=15)) as fake,
        running_runtime(no_pipeline, platform, realtime=services_for(fake.base_url)) as rt,
        connect(f"{rt.ws_base}/voice?voice_token={token}", compression=None) as ws,
    ):
        opening = await events_until(ws, "runtime_ready")
        assert opening[0]["type"] == "runtime_connected"
        speech = loud_frame(600) + silence_frame(900)
        for start in range(0, len(speech), 3200):  # 100 ms per message, as the console sends
            await ws.send(speech[start : start + 3200])
        events = await events_until(ws, "assistant_end")
        session = fake.fake.sessions[0]
    kinds = [e["type"] for e in events]
    vad = [e["event"] for e in events if e["type"] == "vad_event"]
    assert vad == ["SpeechStarted", "UtteranceEnd"]
    assert next(e for e in events if e["type"] == "stt_final")["text"] == "hello browser"
    user = next(e for e in events if e["type"] == "user_final")
    end = events[-1]
    assert end["turnId"] == user["turnId"] and end["outcome"] == "completed"
    assert kinds.index("assistant_start") < kinds.index("assistant_pcm_delta")
    pcm = [e for e in events if e["type"] == "assistant_pcm_delta"]
    assert {e["sampleRate"] for e in pcm} == {24000}
    assert [e["chunkIndex"] for e in pcm] == list(range(len(pcm)))
    assert sum(len(base64.b64decode(e["pcmBase64"])) for e in pcm) > 0
    deltas = "".join(e["text"] for e in events if e["type"] == "assistant_delta")
    assert deltas.strip() == "You said: hello browser."
    text = next(e for e in events if e["type"] == "assistant_text")
    assert text["text"] == "You said: hello browser."
    stages = {e["stage"] for e in events if e["type"] == "timeline"}
    assert {"stt_final", "llm_first_delta", "first_audio"} <= stages
    assert_schema(session)
    await asyncio.sleep(0.3 * T)  # the records flush every 50 ms in tests
    (turn,) = platform.turns.values()
    assert turn["outcome"] == "completed" and turn["transcript"] == "hello browser"


async def test_client_secret_flow_for_the_console_origin_only() -> None:
    platform = FakePlatform()
    agent = s2s_agent(voice="cedar")
    token = platform.add_voice_token(agent, kind="realtime")
    voice_token = platform.add_voice_token(agent)  # a /voice token is not a realtime one
    async with (
        running_fake() as fake,
        running_runtime(no_pipeline, platform, realtime=services_for(fake.base_url)) as rt,
        httpx.AsyncClient(base_url=rt.http_base) as http,
    ):
        preflight = await http.options(
            "/realtime/client-secret",
            headers={"Origin": CONSOLE, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 200  # the runtime's CORS middleware answers it
        assert preflight.headers["access-control-allow-origin"] == CONSOLE
        foreign = await http.options(
            "/realtime/client-secret",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert foreign.status_code == 400
        assert "access-control-allow-origin" not in foreign.headers
        minted = await http.post(
            "/realtime/client-secret", json={"token": token}, headers={"Origin": CONSOLE}
        )
        assert minted.status_code == 201, minted.text
        assert minted.json()["value"] == "ek_fake_1"
        assert minted.headers["access-control-allow-origin"] == CONSOLE
        again = await http.post("/realtime/client-secret", json={"token": token})
        assert again.status_code == 401  # single use
        wrong_kind = await http.post("/realtime/client-secret", json={"token": voice_token})
        assert wrong_kind.status_code == 401
        missing = await http.post("/realtime/client-secret", json={})
        assert missing.status_code == 400 and "token" in missing.json()["error"]
        (request,) = fake.fake.secret_requests
    # The agent's session config went to the provider with the operator's key ...
    assert request["headers"]["authorization"] == f"Bearer {OPERATOR_KEY}"
    session = request["body"]["session"]
    SESSION_SCHEMA.validate_python(session)
    assert session["model"] == "gpt-realtime-2"
    assert session["audio"]["output"]["voice"] == "cedar"
    assert "Agent name: Realtime Dot." in session["instructions"]
    # ... and the key never came back to the browser.
    assert OPERATOR_KEY not in minted.text


async def test_operator_key_never_goes_to_another_origin() -> None:
    """An agent pointing baseUrl elsewhere while naming the operator's key is refused
    before anything is sent: the socket path apologises, the secret path says why."""
    platform = FakePlatform()
    async with (
        running_fake() as operator_origin,
        running_fake() as elsewhere,
        running_runtime(
            no_pipeline, platform, realtime=services_for(operator_origin.base_url)
        ) as rt,
        httpx.AsyncClient(base_url=rt.http_base) as http,
    ):
        agent = s2s_agent(baseUrl=elsewhere.base_url, apiKeyName="OPENAI_API_KEY")
        token = platform.add_voice_token(agent, kind="realtime")
        refused = await http.post("/realtime/client-secret", json={"token": token})
        assert refused.status_code == 400
        assert "only sent to" in refused.json()["error"]
        device = platform.add_device(agent)
        client = DeviceClient(rt.ws_base, device.token)
        await client.connect()
        await client.hello()
        await client.listen_auto()
        await client.send_audio(loud_frame(600) + silence_frame(900))
        assert await client.until_closed() == (1000, "error")
        await client.close()
        assert not elsewhere.fake.sessions and not elsewhere.fake.secret_requests
        assert not operator_origin.fake.sessions
    events = [e["payload"]["message"] for e in platform.events if e["kind"] == "provider_error"]
    assert any("only sent to" in m for m in events)


async def test_a_dropped_provider_apologises_and_the_pipeline_answers_next() -> None:
    platform = FakePlatform()
    token = platform.add_voice_token(s2s_agent(fallback="pipeline"))
    provider = FakeRealtime(ms_per_char=30)
    provider.drop_after_deltas = 1
    speech = loud_frame(600) + silence_frame(900)
    async with (
        running_fake(provider) as fake,
        running_runtime(no_pipeline, platform, realtime=services_for(fake.base_url)) as rt,
        connect(f"{rt.ws_base}/voice?voice_token={token}", compression=None) as ws,
    ):
        await events_until(ws, "runtime_ready")
        for start in range(0, len(speech), 3200):
            await ws.send(speech[start : start + 3200])
        failed = await events_until(ws, "assistant_end")
        await asyncio.sleep(0.2 * T)  # the session moves to its pipeline
        for start in range(0, len(speech), 3200):
            await ws.send(speech[start : start + 3200])
        answered = await events_until(ws, "assistant_end")
    assert failed[-1]["outcome"] == "failed"
    assert any(e["type"] == "error" for e in failed)
    assert any(e["type"] in ("assistant_audio", "assistant_pcm_delta") for e in failed)
    assert next(e for e in answered if e["type"] == "user_final")["text"] == "pipeline heard this"
    assert answered[-1]["outcome"] == "completed"
    assert len(fake.fake.sessions) == 1
