"""Speech-to-speech through the real platform API and PostgreSQL: the user saves a
speech-to-speech agent, the console mints a realtime token and gets its client
secret from the runtime, a bridged /voice turn is stored like a pipeline turn,
and a Dot bound to the agent talks through the provider (only the provider is
the loopback fake)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from websockets.asyncio.client import connect

from runtime.pipeline.doubles import double_pipeline, loud_frame, silence_frame
from runtime.pipeline.interfaces import Pipeline
from runtime.realtime.fake import FakeRealtime, running_fake
from tests.conftest import TEST_TIME_UNIT
from tests.functions.conftest import auth, signup
from tests.runtime.harness import DeviceClient
from tests.runtime.platform_api import (
    bind,
    create_agent,
    provision_device,
    records_flushed,
    runtime_on_api,
)
from tests.runtime.realtime_kit import services_for

T = TEST_TIME_UNIT


def no_pipeline(_agent: Any) -> Pipeline:
    return double_pipeline("<chunk>pipeline answer</chunk>", "pipeline heard this")


async def s2s_agent(api: httpx.AsyncClient, user: dict[str, str]) -> str:
    agent_id = await create_agent(api, user, "Realtime agent")
    updated = await api.put(
        f"/api/agents/{agent_id}",
        headers=auth(user),
        json={
            "architecture": "speech_to_speech",
            "realtime": {"voice": "sage", "turnDetection": {"type": "server_vad"}},
        },
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["agent"]["realtime"]["apiKeyName"] == "OPENAI_API_KEY"
    return agent_id


async def test_console_and_dot_speak_through_the_provider(
    api: httpx.AsyncClient, api_app: Any, database_url: str
) -> None:
    user = await signup(api)
    agent_id = await s2s_agent(api, user)
    provider = FakeRealtime(transcript="hello from the console", ms_per_char=15)
    async with (
        running_fake(provider) as fake,
        runtime_on_api(no_pipeline, api_app, realtime=services_for(fake.base_url)) as rt,
    ):
        # The original console's flow: token from the API, secret from the runtime.
        minted = await api.post(
            "/api/runtime/realtime-browser-sessions", headers=auth(user), json={"agentId": agent_id}
        )
        assert minted.status_code == 201, minted.text
        grant = minted.json()["realtimeSession"]
        assert urlsplit(grant["clientSecretUrl"]).path == "/realtime/client-secret"
        async with httpx.AsyncClient(base_url=rt.http_base) as http:
            secret = await http.post("/realtime/client-secret", json={"token": grant["token"]})
        assert secret.status_code == 201, secret.text
        assert secret.json()["value"].startswith("ek_fake_")
        session = fake.fake.secret_requests[0]["body"]["session"]
        assert session["audio"]["output"]["voice"] == "sage"

        # The bridged path: a /voice token, PCM in, the console's events out.
        voice = await api.post(
            "/api/runtime/voice-sessions", headers=auth(user), json={"agentId": agent_id}
        )
        query = urlsplit(voice.json()["voiceSession"]["url"]).query
        async with connect(f"{rt.ws_base}/voice?{query}", compression=None) as ws:
            speech = loud_frame(600) + silence_frame(900)
            for start in range(0, len(speech), 3200):
                await ws.send(speech[start : start + 3200])
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 10 * T))
                if event["type"] == "assistant_end":
                    break
        assert event["outcome"] == "completed"

        # A Dot bound to the agent.
        dot = await provision_device(api, rt, user)
        await bind(api, user, dot.device_id, agent_id)
        client = DeviceClient(rt.ws_base, dot.token, device_id=dot.mac)
        await client.connect()
        await client.hello()
        await client.listen_auto()
        await client.send_audio(loud_frame(600) + silence_frame(900))
        assert await client.until_closed() == (1000, "turn_complete")
        await client.close()
        await records_flushed(rt)

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "select s.kind, t.transcript, t.reply_text, t.outcome, t.speech_end_at,"
            " t.first_chunk_at, t.first_audio_at from public.voice_turns t"
            " join public.voice_sessions s on s.id = t.session_id where s.user_id = $1"
            " order by s.kind",
            uuid.UUID(user["id"]),
        )
    finally:
        await conn.close()
    assert [r["kind"] for r in rows] == ["browser", "device"]
    for row in rows:
        assert row["outcome"] == "completed"
        assert row["transcript"] == "hello from the console"
        assert row["reply_text"] == "You said: hello from the console."
        assert row["speech_end_at"] <= row["first_chunk_at"] <= row["first_audio_at"]
