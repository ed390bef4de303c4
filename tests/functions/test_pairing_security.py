"""Pairing as an attacker tries it, through the real API on the real schema (issue 11, items 2-6).

Each test names the item it covers; each failed on the code before the fix.
"""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from tests.functions.conftest import AppFactory, auth, signup
from tests.functions.test_devices import _mac, activate, bootstrap, verify


async def _pair(client: httpx.AsyncClient, user: dict[str, str], client_id: str) -> tuple:
    """Bootstrap a Dot with a known Client-Id, claim it, finish activation."""
    mac = _mac()
    ota = (await bootstrap(client, mac, clientId=client_id)).json()
    claimed = await client.post(
        "/api/device-activations/claim",
        headers=auth(user),
        json={"code": ota["activation"]["code"]},
    )
    assert claimed.status_code == 201, claimed.text
    assert (await activate(client, mac)).status_code == 200
    return mac, ota["websocket"]["token"], claimed.json()["device"]


async def _firmware(client: httpx.AsyncClient, user: dict[str, str], device_id: str) -> str:
    response = await client.get(f"/api/dot-devices/{device_id}", headers=auth(user))
    return str(response.json()["device"]["firmwareVersion"])


async def test_item2_owner_cannot_squat_a_factory_fresh_dot(client: httpx.AsyncClient) -> None:
    squatter = await signup(client)
    _, _, own = await _pair(client, squatter, str(uuid.uuid4()))
    victim_mac = _mac()  # a factory-fresh Dot that has never talked to the server
    renamed = await client.put(
        f"/api/dot-devices/{own['id']}",
        headers=auth(squatter),
        json={"serialNumber": victim_mac},
    )
    assert renamed.status_code == 409
    assert renamed.json() == {
        "error": "A paired device keeps the serial number it was paired with."
    }
    ota = await bootstrap(client, victim_mac, systemInfo={"application": {"version": "9.9.9"}})
    assert "activation" in ota.json(), "the victim's Dot must still be offered a code"
    assert await _firmware(client, squatter, own["id"]) == "1.8.2"

    # A typed-in device may not take the MAC of a Dot that has contacted the server either.
    typed = await client.post(
        "/api/dot-devices", headers=auth(squatter), json={"name": "Typed", "serialNumber": "T-1"}
    )
    taken = await client.put(
        f"/api/dot-devices/{typed.json()['device']['id']}",
        headers=auth(squatter),
        json={"serialNumber": victim_mac.upper()},
    )
    assert taken.status_code == 409
    fine = await client.put(
        f"/api/dot-devices/{typed.json()['device']['id']}",
        headers=auth(squatter),
        json={"serialNumber": "T-2"},
    )
    assert fine.status_code == 200 and fine.json()["device"]["serialNumber"] == "T-2"


async def test_item3_a_bare_ota_request_neither_writes_nor_tells(client: httpx.AsyncClient) -> None:
    owner = await signup(client)
    client_id = str(uuid.uuid4())
    mac, token, device = await _pair(client, owner, client_id)
    evil = {"application": {"version": "6.6.6"}, "board": {"name": "evil", "ssid": "attacker"}}

    stranger = (await bootstrap(client, mac, systemInfo=evil)).json()
    unknown = (await bootstrap(client, _mac(), systemInfo=evil)).json()
    assert set(stranger) == set(unknown) == {"server_time", "websocket", "activation"}
    assert set(stranger["websocket"]) == set(unknown["websocket"])
    assert set(stranger["activation"]) == set(unknown["activation"])
    assert await _firmware(client, owner, device["id"]) == "1.8.2"

    # Stock firmware sends no token on OTA: its own Client-Id gets the connect information.
    connect = (await bootstrap(client, mac, clientId=client_id, systemInfo=evil)).json()
    assert set(connect) == {"server_time", "websocket"} and "token" not in connect["websocket"]
    assert await _firmware(client, owner, device["id"]) == "1.8.2"
    # With its token the Dot's report is stored.
    known = (await bootstrap(client, mac, token=token, systemInfo=evil)).json()
    assert "activation" not in known
    assert await _firmware(client, owner, device["id"]) == "6.6.6"


async def test_item4_a_token_without_device_id_is_refused(client: httpx.AsyncClient) -> None:
    owner = await signup(client)
    mac, token, _ = await _pair(client, owner, str(uuid.uuid4()))
    missing = await verify(client, token, None)
    assert missing.status_code == 401
    assert missing.json() == {"error": "Device credential belongs to another device."}
    assert (await verify(client, token, "")).status_code == 401
    assert (await verify(client, token, mac)).status_code == 200


async def test_item6_ota_spam_is_capped_bounded_and_swept(
    make_client: AppFactory, database_url: str
) -> None:
    client = await make_client(OPENDOT_OTA_MAX_PENDING_PER_ADDRESS=3)
    spammer = "203.0.113.77"
    for _ in range(3):
        assert (await bootstrap(client, _mac(), ipAddress=spammer)).status_code == 200
    refused = await bootstrap(client, _mac(), ipAddress=spammer)
    assert refused.status_code == 429
    assert "Too many devices on this network" in refused.json()["error"]
    assert (await bootstrap(client, _mac(), ipAddress="203.0.113.78")).status_code == 200

    mac = _mac()
    for _ in range(4):  # the firmware re-bootstraps every 30-40 s while unclaimed
        assert (await bootstrap(client, mac, ipAddress="203.0.113.79")).status_code == 200
    huge = {"application": {"version": "2.0.0"}, "padding": "x" * 60_000}
    assert (
        await bootstrap(client, mac, ipAddress="203.0.113.79", systemInfo=huge)
    ).status_code == 200

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "select octet_length(system_info::text) as size, firmware_version"
            " from public.device_activation_requests where device_identifier = $1",
            mac,
        )
        assert len(rows) == 1, "one pending request per hardware id"
        assert rows[0]["size"] <= 8192 and rows[0]["firmware_version"] == "2.0.0"
        await conn.execute(
            "insert into public.device_activation_requests (device_identifier, code_hash,"
            " challenge_hash, token_prefix, token_hash, expires_at)"
            " select 'expired-' || n, md5(n::text) || md5(n::text), md5('c' || n) || md5('c' || n),"
            " 'od_dt_x', md5('t' || n) || md5('t' || n), now() - interval '1 minute'"
            " from generate_series(1, 15) n"
        )
        assert (await bootstrap(client, _mac(), ipAddress="203.0.113.80")).status_code == 200
        left = await conn.fetchval(
            "select count(*) from public.device_activation_requests"
            " where device_identifier like 'expired-%'"
        )
        assert left == 0, "expired requests are deleted by the next bootstrap"
    finally:
        await conn.close()
