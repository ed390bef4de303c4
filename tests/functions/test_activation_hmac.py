"""Factory keys registered: only hardware that proves its key pairs (issue 11, activation HMAC).

py-xiaozhi sends its v2 activation body wrapped as `{"Payload": {...}}`; the
runtime forwards the fields at the top level once unwrapped, and a wrapped
body forwarded as is reaches the same check. Both shapes are exercised here as
the internal API receives them. This module registers a key, so it keeps its
own database (every test module gets a fresh clone).
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from shared.secretbox import seal
from shared.tokens import activation_hmac
from tests.functions.conftest import SECRETS_KEY, auth, internal_headers, signup
from tests.functions.test_devices import _mac, bootstrap

DEVICE_KEY = bytes(range(100, 132))


async def _register(database_url: str) -> str:
    serial = f"SN{uuid.uuid4().hex[:10].upper()}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "insert into public.device_factory_keys (serial_number, key_ciphertext)"
            " values ($1, $2)",
            serial,
            seal(base64.b64decode(SECRETS_KEY), DEVICE_KEY.hex(), f"device-factory-key:{serial}"),
        )
    finally:
        await conn.close()
    return serial


async def _poll(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/api/internal/device-activations/activate", json=body, headers=internal_headers()
    )


def _v2(
    mac: str, serial: str, challenge: str, *, wrapped: bool, hmac: str | None = None
) -> dict[str, Any]:
    fields = {
        "algorithm": "hmac-sha256",
        "serial_number": serial,
        "challenge": challenge,
        "hmac": hmac or activation_hmac(DEVICE_KEY, challenge),
    }
    if wrapped:
        return {"deviceId": mac, "Payload": fields}
    return {
        "deviceId": mac,
        "algorithm": fields["algorithm"],
        "serialNumber": serial,
        "challenge": challenge,
        "hmac": fields["hmac"],
    }


@pytest.mark.parametrize("wrapped", [False, True], ids=["unwrapped", "py-xiaozhi-payload"])
async def test_only_a_proven_device_is_claimed(
    client: httpx.AsyncClient, database_url: str, wrapped: bool
) -> None:
    serial = await _register(database_url)
    user = await signup(client)
    mac = _mac()
    ota = (await bootstrap(client, mac, serialNumber=serial, activationVersion="2")).json()
    code, challenge = ota["activation"]["code"], ota["activation"]["challenge"]

    early = await client.post(
        "/api/device-activations/claim", headers=auth(user), json={"code": code}
    )
    assert early.status_code == 409
    assert "not proved it is genuine" in early.json()["error"]
    bare = await _poll(client, {"deviceId": mac})
    assert bare.status_code == 403, "a poll on the Device-Id alone proves nothing"
    forged = await _poll(client, _v2(mac, serial, challenge, wrapped=wrapped, hmac="00" * 32))
    assert forged.status_code == 403

    proven = await _poll(client, _v2(mac, serial, challenge, wrapped=wrapped))
    assert proven.status_code == 202 and proven.json() == {"ok": False, "status": "pending"}
    claimed = await client.post(
        "/api/device-activations/claim", headers=auth(user), json={"code": code}
    )
    assert claimed.status_code == 201, claimed.text
    done = await _poll(client, _v2(mac, serial, challenge, wrapped=wrapped))
    assert done.status_code == 200 and done.json() == {"ok": True, "status": "completed"}


async def test_a_device_without_a_registered_key_cannot_pair(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _register(database_url)
    mac = _mac()
    ota = (await bootstrap(client, mac, serialNumber="SN-NOT-REGISTERED")).json()
    challenge = ota["activation"]["challenge"]
    refused = await _poll(client, _v2(mac, "SN-NOT-REGISTERED", challenge, wrapped=False))
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "No factory key is registered for this device's serial number."
    }
