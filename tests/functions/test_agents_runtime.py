"""Agents and versions, voice tokens, records, secrets, settings, and cross-user isolation."""

from __future__ import annotations

import asyncio
import base64
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx

from shared.secretbox import open_
from tests.functions.conftest import SECRETS_KEY, AppFactory, auth, internal_headers, signup


async def _agent(client: httpx.AsyncClient, user: dict[str, str], name: str = "Helper") -> dict:
    response = await client.post(
        "/api/agents", headers=auth(user), json={"name": name, "description": "desc"}
    )
    assert response.status_code == 201, response.text
    return response.json()["agent"]


def _values(agent: dict, stage_id: str) -> dict:
    stage = next(s for s in agent["pipeline"] if s["id"] == stage_id)
    return {s["key"]: s["value"] for s in stage["settings"]}


async def test_agent_lifecycle_and_versions(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    agent = await _agent(client, user)
    assert [s["id"] for s in agent["pipeline"]] == ["vad", "stt", "llm", "tts"]
    assert agent["architecture"] == "sandwich" and agent["version"] == 1
    assert agent["realtime"]["model"] == "gpt-realtime-2"
    url = f"/api/agents/{agent['id']}"

    same = await client.put(url, headers=auth(user), json=agent)  # the console PUTs everything
    assert same.json()["agent"]["version"] == 1
    stt = next(s for s in agent["pipeline"] if s["id"] == "stt")
    stt["settings"][0]["value"] = "de"
    changed = await client.put(url, headers=auth(user), json={"pipeline": agent["pipeline"]})
    assert changed.json()["agent"]["version"] == 2
    assert _values(changed.json()["agent"], "stt")["language"] == "de"
    renamed = await client.put(url, headers=auth(user), json={"name": "Helper 2"})
    assert renamed.json()["agent"]["version"] == 3
    assert _values(renamed.json()["agent"], "stt")["language"] == "de"

    versions = (await client.get(f"{url}/versions", headers=auth(user))).json()["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [v["pipelineVersion"] for v in versions] == [2, 2, 1]
    assert versions[0]["current"] and not versions[2]["current"]

    restored = await client.post(f"{url}/versions/1/restore", headers=auth(user))
    body = restored.json()["agent"]
    assert body["version"] == 4 and body["name"] == "Helper"
    assert _values(body, "stt")["language"] == "en-US"
    assert (await client.post(f"{url}/versions/99/restore", headers=auth(user))).status_code == 404

    listed = (await client.get("/api/agents", headers=auth(user))).json()["agents"]
    assert [a["id"] for a in listed] == [agent["id"]]
    bad = await client.put(url, headers=auth(user), json={"architecture": "telepathy"})
    assert bad.status_code == 400
    empty = await client.post("/api/agents", headers=auth(user), json={"name": "   "})
    assert empty.status_code == 400


async def test_agent_delete_revokes_tokens_and_deployments(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    agent = await _agent(client, user)
    device = (
        await client.post(
            "/api/dot-devices", headers=auth(user), json={"name": "D", "serialNumber": "S-del"}
        )
    ).json()["device"]
    await client.put(
        f"/api/dot-devices/{device['id']}", headers=auth(user), json={"boundAgentId": agent["id"]}
    )
    session = await client.post(
        "/api/runtime/voice-sessions", headers=auth(user), json={"agentId": agent["id"]}
    )
    token = parse_qs(urlsplit(session.json()["voiceSession"]["url"]).query)["voice_token"][0]
    deleted = await client.delete(f"/api/agents/{agent['id']}", headers=auth(user))
    assert deleted.json() == {"ok": True}
    assert (
        await client.delete(f"/api/agents/{agent['id']}", headers=auth(user))
    ).status_code == 404
    verify = await client.post(
        "/api/internal/runtime/voice-sessions/verify",
        json={"token": token},
        headers=internal_headers(),
    )
    assert verify.status_code == 401
    devices = (await client.get("/api/dot-devices", headers=auth(user))).json()["devices"]
    assert devices[0]["boundAgentId"] is None
    state = (await client.get("/api/platform-state", headers=auth(user))).json()
    assert state["agents"] == []


async def test_voice_token_is_consumed_exactly_once(make_client: AppFactory) -> None:
    client = await make_client(OPENDOT_DB_POOL_MAX=10)
    user = await signup(client)
    agent = await _agent(client, user)
    put = await client.put(
        "/api/secrets/OPENAI_API_KEY", headers=auth(user), json={"value": "sk-test-123"}
    )
    assert put.status_code == 200
    created = await client.post(
        "/api/runtime/voice-sessions", headers=auth(user), json={"agentId": agent["id"]}
    )
    assert created.status_code == 201
    url = created.json()["voiceSession"]["url"]
    assert url.startswith("ws://localhost:8787/voice?voice_token=od_vt_")
    token = parse_qs(urlsplit(url).query)["voice_token"][0]

    async def consume() -> int:
        response = await client.post(
            "/api/internal/runtime/voice-sessions/verify",
            json={"token": token, "ipAddress": "192.0.2.1"},
            headers=internal_headers(),
        )
        return response.status_code

    results = await asyncio.gather(*(consume() for _ in range(50)))
    assert sorted(results) == [200] + [401] * 49

    second = await client.post(
        "/api/runtime/voice-sessions", headers=auth(user), json={"agentId": agent["id"]}
    )
    token2 = parse_qs(urlsplit(second.json()["voiceSession"]["url"]).query)["voice_token"][0]
    granted = await client.post(
        "/api/internal/runtime/voice-sessions/verify",
        json={"token": token2},
        headers=internal_headers(),
    )
    body = granted.json()
    assert body["userId"] == user["id"] and body["agent"]["id"] == agent["id"]
    sealed = body["secrets"]["OPENAI_API_KEY"]
    key = base64.b64decode(SECRETS_KEY)
    assert open_(key, sealed, f"{user['id']}:OPENAI_API_KEY") == "sk-test-123"
    realtime = await client.post(
        "/api/runtime/realtime-browser-sessions", headers=auth(user), json={"agentId": agent["id"]}
    )
    assert realtime.status_code == 201
    assert realtime.json()["realtimeSession"]["token"].startswith("od_vt_")


async def test_secrets_are_write_only(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    assert (
        await client.put("/api/secrets/bad-name", headers=auth(user), json={"value": "x"})
    ).status_code == 400
    await client.put("/api/secrets/DEEPGRAM_API_KEY", headers=auth(user), json={"value": "dg-1"})
    await client.put("/api/secrets/DEEPGRAM_API_KEY", headers=auth(user), json={"value": "dg-2"})
    listed = (await client.get("/api/secrets", headers=auth(user))).json()["secrets"]
    assert [s["name"] for s in listed] == ["DEEPGRAM_API_KEY"]
    assert set(listed[0]) == {"name", "createdAt", "updatedAt"}
    assert (await client.delete("/api/secrets/DEEPGRAM_API_KEY", headers=auth(user))).json() == {
        "ok": True
    }
    assert (
        await client.delete("/api/secrets/DEEPGRAM_API_KEY", headers=auth(user))
    ).status_code == 404


async def test_secrets_unavailable_without_key(make_client: AppFactory) -> None:
    client = await make_client(OPENDOT_SECRETS_KEY=None)
    user = await signup(client)
    response = await client.put("/api/secrets/X_KEY", headers=auth(user), json={"value": "v"})
    assert response.status_code == 503


async def test_settings_round_trip(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    response = await client.put(
        "/api/settings",
        headers=auth(user),
        json={"workspaceName": "Lab", "timezone": "Europe/Zurich", "compactMode": True},
    )
    assert response.json()["settings"] == {
        "displayName": user["email"].split("@")[0],
        "email": user["email"],
        "workspaceName": "Lab",
        "timezone": "Europe/Zurich",
        "compactMode": True,
    }
    assert (await client.get("/api/settings", headers=auth(user))).json() == response.json()
    bad = await client.put("/api/settings", headers=auth(user), json={"compactMode": "maybe"})
    assert bad.status_code == 400
    for zone in ("Mars/Olympus", "../../etc/passwd", "Europe/"):
        nowhere = await client.put("/api/settings", headers=auth(user), json={"timezone": zone})
        assert nowhere.status_code == 400, zone
        assert "IANA time zone" in nowhere.json()["error"]
    kept = await client.get("/api/settings", headers=auth(user))
    assert kept.json()["settings"]["timezone"] == "Europe/Zurich"


async def test_sessions_and_records_are_idempotent(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    agent = await _agent(client, user)
    session_id = str(uuid.uuid4())
    open_body = {
        "sessionId": session_id,
        "kind": "browser",
        "userId": user["id"],
        "agentId": agent["id"],
        "deviceId": None,
        "protocolVersion": None,
        "runtimeInstance": "rt-a",
        "startedAt": "2026-11-25T10:00:00Z",
    }
    for _ in range(2):
        opened = await client.post(
            "/api/internal/runtime/sessions/open", json=open_body, headers=internal_headers()
        )
        assert opened.status_code == 201
    turn_id = str(uuid.uuid4())
    records = {
        "turns": [
            {
                "id": turn_id,
                "sessionId": session_id,
                "turnIndex": 0,
                "transcript": "hi",
                "replyText": "hello",
                "outcome": "completed",
                "error": None,
                "marks": {
                    "speechEndAt": "2026-11-25T10:00:01Z",
                    "sttFinalAt": None,
                    "llmFirstTokenAt": None,
                    "firstChunkAt": None,
                    "firstAudioAt": "2026-11-25T10:00:02Z",
                    "endedAt": None,
                },
            }
        ],
        "events": [
            {
                "id": str(uuid.uuid4()),
                "sessionId": session_id,
                "turnId": turn_id,
                "kind": "provider.fallback",
                "payload": {"from": "a"},
                "createdAt": "2026-11-25T10:00:01Z",
            }
        ],
    }
    for _ in range(2):
        stored = await client.post(
            "/api/internal/runtime/records", json=records, headers=internal_headers()
        )
        assert stored.json() == {"ok": True, "turns": 1, "events": 1}
    closed = await client.post(
        "/api/internal/runtime/sessions/close",
        json={"sessionId": session_id, "endedAt": "2026-11-25T10:05:00Z", "reason": "client"},
        headers=internal_headers(),
    )
    assert closed.json() == {"ok": True}
    orphan = dict(records, turns=[dict(records["turns"][0], sessionId=str(uuid.uuid4()))])
    missing = await client.post(
        "/api/internal/runtime/records", json=orphan, headers=internal_headers()
    )
    assert missing.status_code == 404
    invalid = await client.post(
        "/api/internal/runtime/records",
        json={"turns": [dict(records["turns"][0], outcome="exploded")]},
        headers=internal_headers(),
    )
    assert invalid.status_code == 400


async def test_cross_user_access_is_404(client: httpx.AsyncClient) -> None:
    alice, mallory = await signup(client), await signup(client)
    agent = await _agent(client, alice)
    device = (
        await client.post(
            "/api/dot-devices", headers=auth(alice), json={"name": "A", "serialNumber": "A-1"}
        )
    ).json()["device"]
    key = (await client.post("/api/api-keys", headers=auth(alice), json={"name": "k"})).json()[
        "apiKey"
    ]
    m = auth(mallory)
    attempts = [
        client.get(f"/api/agents/{agent['id']}", headers=m),
        client.put(f"/api/agents/{agent['id']}", headers=m, json={"name": "mine"}),
        client.get(f"/api/agents/{agent['id']}/versions", headers=m),
        client.post(f"/api/agents/{agent['id']}/versions/1/restore", headers=m),
        client.delete(f"/api/agents/{agent['id']}", headers=m),
        client.get(f"/api/dot-devices/{device['id']}", headers=m),
        client.put(f"/api/dot-devices/{device['id']}", headers=m, json={"name": "mine"}),
        client.put("/api/dot-devices/A-1", headers=m, json={"name": "mine"}),
        client.put("/api/dot-devices/runtime:A-1", headers=m, json={"name": "mine"}),
        client.delete(f"/api/dot-devices/{device['id']}", headers=m),
        client.post(f"/api/api-keys/{key['id']}/revoke", headers=m),
        client.post("/api/runtime/voice-sessions", headers=m, json={"agentId": agent["id"]}),
    ]
    for response in [await a for a in attempts]:
        assert response.status_code == 404, (response.request.url, response.text)
        assert list(response.json()) == ["error"]
    # Binding someone else's agent to one's own device is a 404 as well.
    own = (
        await client.post("/api/dot-devices", headers=m, json={"name": "M", "serialNumber": "M-1"})
    ).json()["device"]
    steal = await client.put(
        f"/api/dot-devices/{own['id']}", headers=m, json={"boundAgentId": agent["id"]}
    )
    assert steal.status_code == 404
    state = (await client.get("/api/platform-state", headers=auth(alice))).json()
    assert state["agents"][0]["name"] == "Helper" and state["devices"][0]["name"] == "A"
    assert state["apiKeys"][0]["status"] == "active"
