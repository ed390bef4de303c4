"""Devices, bindings, and the OTA activation flow end to end through the internal API."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import asyncpg
import httpx

from functions.activation import activation_code
from shared.secretbox import seal
from shared.tokens import activation_hmac
from tests.functions.conftest import SECRETS_KEY, AppFactory, auth, internal_headers, signup


def _mac() -> str:
    raw = uuid.uuid4().bytes[:6]
    return ":".join(f"{b:02x}" for b in raw)


SYSTEM_INFO = {
    "version": 2,
    "mac_address": "aa:bb",
    "application": {"name": "xiaozhi", "version": "1.8.2"},
    "board": {"type": "opendot-s3", "name": "opendot-s3"},
}


async def bootstrap(
    client: httpx.AsyncClient, device_id: str, token: str | None = None, **extra: Any
) -> httpx.Response:
    body: dict[str, Any] = {
        "deviceId": device_id,
        "clientId": str(uuid.uuid4()),
        "serialNumber": None,
        "userAgent": "opendot-s3/1.8.2",
        "ipAddress": "192.0.2.10",
        "authorization": f"Bearer {token}" if token else None,
        "websocketUrl": "ws://runtime.test:8787/ws",
        "activationVersion": "1",
        "systemInfo": SYSTEM_INFO,
    }
    body.update(extra)
    return await client.post(
        "/api/internal/device-activations/bootstrap", json=body, headers=internal_headers()
    )


async def activate(client: httpx.AsyncClient, device_id: str, **body: Any) -> httpx.Response:
    return await client.post(
        "/api/internal/device-activations/activate",
        json={"deviceId": device_id, **body},
        headers=internal_headers(),
    )


async def verify(client: httpx.AsyncClient, token: str, device_id: str | None) -> httpx.Response:
    return await client.post(
        "/api/internal/device-runtime/verify",
        json={
            "token": token,
            "deviceId": device_id,
            "ipAddress": "192.0.2.11",
            "protocolVersion": 1,
        },
        headers=internal_headers(),
    )


async def pair_by_code(client: httpx.AsyncClient, user: dict[str, str]) -> tuple[str, str, dict]:
    """Bootstrap a fresh device, claim its code, complete activation. -> (mac, token, device)."""
    mac = _mac()
    ota = (await bootstrap(client, mac)).json()
    claim = await client.post(
        "/api/device-activations/claim",
        headers=auth(user),
        json={"code": ota["activation"]["code"]},
    )
    assert claim.status_code == 201, claim.text
    assert (await activate(client, mac)).status_code == 200
    return mac, ota["websocket"]["token"], claim.json()["device"]


async def test_full_activation_flow(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    mac = _mac()
    first = await bootstrap(client, mac)
    assert first.status_code == 200, first.text
    ota = first.json()
    assert set(ota) == {"server_time", "websocket", "activation"}
    code, token = ota["activation"]["code"], ota["websocket"]["token"]
    assert len(code) == 6 and code.isdigit() and token.startswith("od_dt_")
    assert ota["activation"]["timeout_ms"] == 300_000
    assert ota["websocket"]["url"] == "ws://runtime.test:8787/ws"

    # The firmware re-bootstraps while unclaimed: same code; its stored token is kept.
    again = (await bootstrap(client, mac, token=token)).json()
    assert again["activation"]["code"] == code
    assert again["activation"]["challenge"] == ota["activation"]["challenge"]
    assert again["websocket"]["token"] == token
    # Without its token a request for the same Device-Id (a public MAC) never hears
    # the pending code: it starts a new activation and the old code stops working.
    bare = (await bootstrap(client, mac)).json()
    assert bare["websocket"]["token"] != token
    assert bare["activation"]["challenge"] != ota["activation"]["challenge"]
    stale = await client.post(
        "/api/device-activations/claim", headers=auth(user), json={"code": code}
    )
    assert stale.status_code == 404, stale.text
    ota, token = bare, bare["websocket"]["token"]
    code = ota["activation"]["code"]

    pending = await activate(client, mac, challenge=ota["activation"]["challenge"])
    assert pending.status_code == 202 and pending.json() == {"ok": False, "status": "pending"}
    claim = await client.post(
        "/api/device-activations/claim",
        headers=auth(user),
        json={"code": f" {code[:3]} {code[3:]}"},
    )
    assert claim.status_code == 201, claim.text
    device = claim.json()["device"]
    assert device["firmwareVersion"] == "1.8.2" and device["board"] == "opendot-s3"
    assert device["availability"] == "available"
    done = await activate(client, mac, challenge=ota["activation"]["challenge"])
    assert done.status_code == 200 and done.json() == {"ok": True, "status": "completed"}
    assert (
        await activate(client, mac, challenge=ota["activation"]["challenge"])
    ).status_code == 409

    known = (await bootstrap(client, mac, token=token)).json()
    assert "activation" not in known and "token" not in known["websocket"]

    granted = await verify(client, token, mac.upper())
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert body["userId"] == user["id"] and body["device"]["id"] == device["id"]
    assert body["agent"] is None and body["memory"] == [] and body["secrets"] == {}
    assert (await verify(client, token, _mac())).status_code == 401  # another Device-Id
    assert (await verify(client, "od_dt_nope", mac)).status_code == 401


async def test_removed_device_gets_a_fresh_activation(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    mac, token, device = await pair_by_code(client, user)
    deleted = await client.delete(f"/api/dot-devices/{device['id']}", headers=auth(user))
    assert deleted.json() == {"ok": True}
    assert (await verify(client, token, mac)).status_code == 401  # credentials revoked
    ota = (await bootstrap(client, mac, token=token)).json()
    assert "activation" in ota and ota["websocket"]["token"] != token
    listed = await client.get("/api/dot-devices", headers=auth(user))
    assert listed.json()["devices"] == []


async def test_claim_conflict_and_brute_force(make_client: AppFactory) -> None:
    client = await make_client()
    owner, other = await signup(client), await signup(client)
    mac = _mac()
    # Someone typed this serial in by hand (no credential): that proves nothing, so
    # the person who hears the device's code still claims it.
    squat = await client.post(
        "/api/dot-devices", headers=auth(other), json={"name": "Not mine", "serialNumber": mac}
    )
    assert squat.status_code == 201
    ota = (await bootstrap(client, mac)).json()
    # A second pending request naming the same serial (say, the board re-flashed).
    second = (await bootstrap(client, _mac(), serialNumber=mac)).json()
    claimed = await client.post(
        "/api/device-activations/claim",
        headers=auth(owner),
        json={"code": ota["activation"]["code"]},
    )
    assert claimed.status_code == 201, claimed.text
    assert (await activate(client, mac)).status_code == 200
    # Once it holds a credential in the owner's account, another code for the same
    # serial cannot be claimed by anyone else.
    conflict = await client.post(
        "/api/device-activations/claim",
        headers=auth(other),
        json={"code": second["activation"]["code"]},
    )
    assert conflict.status_code == 409
    assert conflict.json() == {"error": "This device is already paired to another account."}
    attacker = await signup(client)
    codes = [f"{n:06d}" for n in range(100000, 100006)]
    statuses = []
    for code in codes:
        response = await client.post(
            "/api/device-activations/claim", headers=auth(attacker), json={"code": code}
        )
        statuses.append(response.status_code)
    assert statuses[:5] == [404] * 5 and statuses[5] == 429
    bad = await client.post(
        "/api/device-activations/claim", headers=auth(attacker), json={"code": "12"}
    )
    assert bad.status_code == 400


async def test_manual_pairing_update_bind_unbind(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    created = await client.post(
        "/api/dot-devices", headers=auth(user), json={"name": "Desk", "serialNumber": "SN-1"}
    )
    assert created.status_code == 201
    device = created.json()["device"]
    assert device["availability"] == "unknown" and device["boundAgentId"] is None
    dup = await client.post(
        "/api/dot-devices", headers=auth(user), json={"name": "Again", "serialNumber": "SN-1"}
    )
    assert dup.status_code == 409 and "error" in dup.json()

    renamed = await client.put("/api/dot-devices/SN-1", headers=auth(user), json={"name": "Desk 2"})
    assert renamed.json()["device"]["name"] == "Desk 2"
    checked = await client.put(
        "/api/dot-devices/runtime:SN-1",
        headers=auth(user),
        json={"availability": "offline", "updateMode": "checking", "unknownField": 1},
    )
    assert checked.json()["device"]["availability"] == "offline"
    assert checked.json()["device"]["updateMode"] == "checking"

    agent = (
        await client.post(
            "/api/agents", headers=auth(user), json={"name": "Helper", "description": ""}
        )
    ).json()["agent"]
    bound = await client.put(
        f"/api/dot-devices/{device['id']}",
        headers=auth(user),
        json={
            "boundAgentId": agent["id"],
            "boundConfigVersion": agent["updatedAt"],
            "boundAt": "2026-11-25T10:00:00.000Z",
        },
    )
    assert bound.status_code == 200, bound.text
    body = bound.json()["device"]
    assert body["boundAgentId"] == agent["id"] and body["boundAgentName"] == "Helper"
    assert body["boundAt"] == "2026-11-25T10:00:00.000Z" and body["followLatest"] is False
    follow = await client.put(
        f"/api/dot-devices/{device['id']}", headers=auth(user), json={"followLatest": True}
    )
    assert follow.json()["device"]["followLatest"] is True
    unbound = await client.put(
        f"/api/dot-devices/{device['id']}", headers=auth(user), json={"boundAgentId": None}
    )
    assert unbound.json()["device"]["boundAgentId"] is None
    missing = await client.put(
        f"/api/dot-devices/{device['id']}",
        headers=auth(user),
        json={"boundAgentId": str(uuid.uuid4())},
    )
    assert missing.status_code == 404
    bad_time = await client.put(
        f"/api/dot-devices/{device['id']}",
        headers=auth(user),
        json={"boundAgentId": agent["id"], "boundAt": "yesterday"},
    )
    assert bad_time.status_code == 400


async def test_bound_agent_reaches_device_pinned_or_following(
    client: httpx.AsyncClient, database_url: str
) -> None:
    user = await signup(client)
    mac, token, device = await pair_by_code(client, user)
    agent = (
        await client.post("/api/agents", headers=auth(user), json={"name": "V1", "description": ""})
    ).json()["agent"]
    await client.put(
        f"/api/dot-devices/{device['id']}", headers=auth(user), json={"boundAgentId": agent["id"]}
    )
    listen = await asyncpg.connect(database_url)
    notices: list[str] = []
    await listen.add_listener("opendot_device_config", lambda *a: notices.append(a[3]))
    try:
        await client.put(f"/api/agents/{agent['id']}", headers=auth(user), json={"name": "V2"})
        pinned = (await verify(client, token, mac)).json()["agent"]
        assert pinned["name"] == "V1" and pinned["version"] == 1
        await client.put(
            f"/api/dot-devices/{device['id']}", headers=auth(user), json={"followLatest": True}
        )
        following = (await verify(client, token, mac)).json()["agent"]
        assert following["name"] == "V2" and following["version"] == 2
        await client.put(f"/api/agents/{agent['id']}", headers=auth(user), json={"name": "V3"})
        config = await client.post(
            "/api/internal/device-runtime/config",
            json={"deviceId": device["id"]},
            headers=internal_headers(),
        )
        assert config.json()["agent"]["name"] == "V3"
        await listen.execute("select 1")  # let notifications arrive
    finally:
        await listen.close()
    assert device["id"] in notices


async def _record_turn(
    client: httpx.AsyncClient, user: dict[str, str], device: dict, text: str, ended_at: str
) -> None:
    session_id = str(uuid.uuid4())
    opened = await client.post(
        "/api/internal/runtime/sessions/open",
        json={
            "sessionId": session_id,
            "kind": "device",
            "userId": user["id"],
            "agentId": None,
            "deviceId": device["id"],
            "protocolVersion": 1,
            "runtimeInstance": "rt-1",
            "startedAt": ended_at,
        },
        headers=internal_headers(),
    )
    assert opened.status_code == 201, opened.text
    turn = {
        "id": str(uuid.uuid4()),
        "sessionId": session_id,
        "turnIndex": 0,
        "transcript": text,
        "replyText": f"re: {text}",
        "outcome": "completed",
        "error": None,
        "marks": {"endedAt": ended_at},
    }
    stored = await client.post(
        "/api/internal/runtime/records",
        json={"turns": [turn], "events": []},
        headers=internal_headers(),
    )
    assert stored.status_code == 200, stored.text


async def test_owner_resets_device_memory(client: httpx.AsyncClient, database_url: str) -> None:
    user, stranger = await signup(client), await signup(client)
    mac, token, device = await pair_by_code(client, user)
    await _record_turn(client, user, device, "my name is Ada", "2026-11-24T10:00:00Z")
    assert len((await verify(client, token, mac)).json()["memory"]) == 2

    path = f"/api/dot-devices/{device['id']}/memory/reset"
    assert (await client.post(path, headers=auth(stranger))).status_code == 404
    assert len((await verify(client, token, mac)).json()["memory"]) == 2

    listen = await asyncpg.connect(database_url)
    notices: list[str] = []
    await listen.add_listener("opendot_device_memory", lambda *a: notices.append(a[3]))
    try:
        reset = await client.post(path, headers=auth(user))
        assert reset.status_code == 200 and reset.json() == {"ok": True}
        await listen.execute("select 1")  # let the notification arrive
    finally:
        await listen.close()
    assert notices == [device["id"]]
    assert (await verify(client, token, mac)).json()["memory"] == []
    # A turn that ended before the reset but reached the API after it stays forgotten.
    await _record_turn(client, user, device, "late record", "2026-11-24T10:00:01Z")
    assert (await verify(client, token, mac)).json()["memory"] == []


async def test_an_owner_reset_forgets_the_remembered_facts_too(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    mac, token, device = await pair_by_code(client, user)
    remembered = await client.post(
        "/api/internal/device-runtime/memory/facts",
        json={"deviceId": device["id"], "remember": "likes green tea"},
        headers=internal_headers(),
    )
    assert remembered.status_code == 200 and remembered.json() == {"facts": ["likes green tea"]}
    assert (await verify(client, token, mac)).json()["facts"] == ["likes green tea"]
    reset = await client.post(f"/api/dot-devices/{device['id']}/memory/reset", headers=auth(user))
    assert reset.status_code == 200
    assert (await verify(client, token, mac)).json()["facts"] == []


async def test_device_state_and_memory(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    mac, token, device = await pair_by_code(client, user)
    state = await client.post(
        "/api/internal/device-runtime/state",
        json={"deviceId": device["id"], "availability": "offline"},
        headers=internal_headers(),
    )
    assert state.json() == {"ok": True}
    listed = (await client.get("/api/dot-devices", headers=auth(user))).json()["devices"]
    assert listed[0]["availability"] == "offline"
    session_id = str(uuid.uuid4())
    opened = await client.post(
        "/api/internal/runtime/sessions/open",
        json={
            "sessionId": session_id,
            "kind": "device",
            "userId": user["id"],
            "agentId": None,
            "deviceId": device["id"],
            "protocolVersion": 1,
            "runtimeInstance": "rt-1",
            "startedAt": "2026-11-25T10:00:00Z",
        },
        headers=internal_headers(),
    )
    assert opened.status_code == 201
    turns = [
        {
            "id": str(uuid.uuid4()),
            "sessionId": session_id,
            "turnIndex": i,
            "transcript": f"question {i}",
            "replyText": f"answer {i}",
            "outcome": "completed" if i != 1 else "aborted",
            "error": None,
            "marks": {},
        }
        for i in range(3)
    ]
    await client.post(
        "/api/internal/runtime/records",
        json={"turns": turns, "events": []},
        headers=internal_headers(),
    )
    memory = (await verify(client, token, mac)).json()["memory"]
    assert [m["content"] for m in memory] == ["question 0", "answer 0", "question 2", "answer 2"]
    reset = await client.post(
        "/api/internal/device-runtime/memory/reset",
        json={"deviceId": device["id"]},
        headers=internal_headers(),
    )
    assert reset.json() == {"ok": True}
    assert (await verify(client, token, mac)).json()["memory"] == []
    unknown = await client.post(
        "/api/internal/device-runtime/state",
        json={"deviceId": str(uuid.uuid4()), "availability": "offline"},
        headers=internal_headers(),
    )
    assert unknown.status_code == 404


async def test_wss_url_when_runtime_is_public_over_tls(make_client: AppFactory) -> None:
    client = await make_client(OPENDOT_RUNTIME_PUBLIC_HTTP_URL="https://voice.example.com")
    ota = (await bootstrap(client, _mac(), websocketUrl=None)).json()
    assert ota["websocket"]["url"] == "wss://voice.example.com/ws"
    ota = (await bootstrap(client, _mac(), websocketUrl="ws://voice.example.com/ws")).json()
    assert ota["websocket"]["url"] == "wss://voice.example.com/ws"


async def test_v2_hmac_is_verified_when_a_factory_key_exists(
    client: httpx.AsyncClient, database_url: str
) -> None:
    user = await signup(client)
    serial, mac = f"SN{uuid.uuid4().hex[:10].upper()}", _mac()
    device_key = bytes(range(100, 132))
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "insert into public.device_factory_keys (serial_number, key_ciphertext)"
            " values ($1, $2)",
            serial,
            seal(base64.b64decode(SECRETS_KEY), device_key.hex(), f"device-factory-key:{serial}"),
        )
    finally:
        await conn.close()
    ota = (await bootstrap(client, mac, serialNumber=serial, activationVersion="2")).json()
    challenge = ota["activation"]["challenge"]
    forged = await activate(
        client,
        mac,
        algorithm="hmac-sha256",
        serialNumber=serial,
        challenge=challenge,
        hmac="00" * 32,
    )
    assert forged.status_code == 403
    good = activation_hmac(device_key, challenge)
    pending = await activate(
        client, mac, algorithm="hmac-sha256", serialNumber=serial, challenge=challenge, hmac=good
    )
    assert pending.status_code == 202
    await client.post(
        "/api/device-activations/claim",
        headers=auth(user),
        json={"code": ota["activation"]["code"]},
    )
    done = await activate(
        client, mac, algorithm="hmac-sha256", serialNumber=serial, challenge=challenge, hmac=good
    )
    assert done.status_code == 200
    devices = (await client.get("/api/dot-devices", headers=auth(user))).json()["devices"]
    assert devices[0]["serialNumber"] == serial and devices[0]["name"] == f"Dot {serial[-6:]}"


async def test_internal_endpoints_need_the_secret(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"X-OpenDot-Runtime-Secret": "wrong"}):
        response = await client.post(
            "/api/internal/device-activations/bootstrap", json={"deviceId": "x"}, headers=headers
        )
        assert response.status_code == 401
        assert response.json() == {"error": "Runtime internal authentication failed."}


def test_codes_are_derived_deterministically() -> None:
    key = b"k" * 32
    an_id = uuid.uuid4()
    assert activation_code(key, an_id) == activation_code(key, an_id)
    assert 100000 <= int(activation_code(key, an_id)) <= 999999
