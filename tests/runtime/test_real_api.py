"""End to end with the real platform API on a migrated database: OTA through the
runtime, claim through the API, device sockets with v1/v2/v3 framing, spoken
Opus in, stt/llm/tts and decodable Opus out, turns persisted, memory across sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from runtime.audio.synthetic import speech_pcm
from runtime.pipeline.doubles import double_pipeline
from runtime.pipeline.interfaces import Pipeline
from tests.conftest import TEST_TIME_UNIT
from tests.functions.conftest import auth, signup
from tests.runtime.harness import DeviceClient, decodable, running_runtime

T = TEST_TIME_UNIT


def remembering_pipeline(seen: list[list[str]]) -> Any:
    def make(_agent: Any) -> Pipeline:
        def reply(request: Any) -> str:
            seen.append([m.content for m in request.messages])
            return f"<chunk>Reply number {len(seen)}.</chunk>"

        return double_pipeline(reply, "what is the weather")

    return make


async def test_device_lifecycle_against_the_real_api(
    api: httpx.AsyncClient, api_app: Any, database_url: str
) -> None:
    seen: list[list[str]] = []
    mac = "02:00:00:aa:bb:01"
    async with running_runtime(
        remembering_pipeline(seen),
        api_transport=httpx.ASGITransport(app=api_app),
        PLATFORM_API_INTERNAL_URL="http://api.test/api",
        OPENDOT_RUNTIME_INTERNAL_SECRET="test-internal-secret-0123456789",
    ) as rt:
        async with httpx.AsyncClient(base_url=rt.http_base) as http:
            headers = {
                "Device-Id": mac,
                "Client-Id": "c0ffee00-0000-4000-8000-000000000001",
                "User-Agent": "bread-compact-wifi/1.7.6",
                "Activation-Version": "1",
            }
            ota = await http.post(
                "/ota/",
                headers=headers,
                json={"application": {"version": "1.7.6"}, "board": {"type": "dot"}},
            )
            assert ota.status_code == 200, ota.text
            body = ota.json()
            assert body["websocket"]["url"] == f"ws://127.0.0.1:{rt.port}/ws"
            code, token = body["activation"]["code"], body["websocket"]["token"]
            pending = await http.post("/ota/activate", headers=headers, json={})
            assert pending.status_code == 202
            user = await signup(api)
            claim = await api.post(
                "/api/device-activations/claim", headers=auth(user), json={"code": code}
            )
            assert claim.status_code == 201, claim.text
            done = await http.post("/ota/activate", headers=headers, json={})
            assert done.status_code == 200, done.text
            forwarded = await http.post(
                "/ota/", headers={**headers, "X-Forwarded-Proto": "https"}, json={}
            )
            assert forwarded.json()["websocket"]["url"].startswith("wss://")

        speech = speech_pcm("What is the weather like today?", lead_ms=300, tail_ms=900)
        session_ids = []
        for version in (1, 2, 3):
            client = DeviceClient(rt.ws_base, token, version=version, device_id=mac)
            await client.speak(speech)
            assert await client.until_closed() == (1000, "turn_complete")
            types = {m["type"] for m in client.messages}
            assert {"stt", "llm", "tts"} <= types
            assert client.packets and decodable(client.packets) == len(client.packets)
            session_ids.append(client.session_id)
            await client.close()
        # Each socket remembered the turns before it (persisted through the API).
        assert [len(s) for s in seen] == [1, 3, 5]
        assert seen[2][:2] == ["what is the weather", "Reply number 1."]
        # Records are flushed in the background: wait until the third turn is stored
        # (an empty buffer alone is not enough; the last batch may still be in flight).
        conn = await asyncpg.connect(database_url)
        try:
            for _ in range(int(200 * T)):
                stored = await conn.fetchval("select count(*) from public.voice_turns")
                if stored >= 3 and not rt.app.ctx.records.pending:
                    break
                await asyncio.sleep(0.05)
            turns = await conn.fetch(
                "select outcome, transcript from public.voice_turns order by created_at"
            )
            sessions = await conn.fetchval("select count(*) from public.voice_sessions")
        finally:
            await conn.close()
    assert [t["outcome"] for t in turns] == ["completed"] * 3
    assert sessions == 3
