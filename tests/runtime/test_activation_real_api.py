"""py-xiaozhi's activation through the real runtime and the real API (issue 11).

py-xiaozhi polls `/ota/activate` with its v2 fields wrapped as
`{"Payload": {...}}`. The runtime used to forward only top-level fields, so the
serial number and the HMAC never reached the API: with factory keys registered
the Dot could never prove itself, and without them it paired on its Device-Id
alone. This module registers a factory key (so it keeps its own database) and
drives the exact request py-xiaozhi sends through the runtime's socket.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import asyncpg
import httpx

from runtime.pipeline.doubles import double_pipeline
from shared.secretbox import seal
from shared.tokens import activation_hmac
from tests.functions.conftest import SECRETS_KEY, auth, signup
from tests.runtime.platform_api import runtime_on_api

DEVICE_KEY = bytes(range(7, 39))


async def _register_factory_key(database_url: str) -> str:
    serial = f"SN-{uuid.uuid4().hex[:12].upper()}"
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


def _py_xiaozhi_poll(serial: str, challenge: str, hmac: str) -> str:
    """The body of py-xiaozhi's DeviceActivator.activate (src/utils/device_activator.py)."""
    body: dict[str, Any] = {
        "Payload": {
            "algorithm": "hmac-sha256",
            "serial_number": serial,
            "challenge": challenge,
            "hmac": hmac,
        }
    }
    return json.dumps(body)


async def test_py_xiaozhi_proves_its_factory_key_through_the_runtime(
    api: httpx.AsyncClient, api_app: Any, database_url: str
) -> None:
    serial = await _register_factory_key(database_url)
    user = await signup(api)
    mac = "02:5a:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:4])
    headers = {
        "Activation-Version": "2",
        "Device-Id": mac,
        "Client-Id": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    async with (
        runtime_on_api(lambda _a: double_pipeline(), api_app) as rt,
        httpx.AsyncClient(base_url=rt.http_base) as http,
    ):
        ota = await http.post(
            "/ota/", headers={**headers, "Serial-Number": serial}, json={"board": {"type": "pc"}}
        )
        assert ota.status_code == 200, ota.text
        code, challenge = ota.json()["activation"]["code"], ota.json()["activation"]["challenge"]

        forged = await http.post(
            "/ota/activate", headers=headers, content=_py_xiaozhi_poll(serial, challenge, "0" * 64)
        )
        assert forged.status_code == 403, forged.text
        proof = _py_xiaozhi_poll(serial, challenge, activation_hmac(DEVICE_KEY, challenge))
        pending = await http.post("/ota/activate", headers=headers, content=proof)
        assert pending.status_code == 202, pending.text
        claimed = await api.post(
            "/api/device-activations/claim", headers=auth(user), json={"code": code}
        )
        assert claimed.status_code == 201, claimed.text
        done = await http.post("/ota/activate", headers=headers, content=proof)
        assert done.status_code == 200 and done.json() == {"ok": True, "status": "completed"}
