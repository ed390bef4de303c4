"""Fixtures for firmware tests: the real API on a migrated database, a fleet of Dots."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from shared.firmware.image import build_app_image
from tests.functions.conftest import auth, internal_headers, make_client  # noqa: F401

BOARD = "bread-compact-wifi"


@dataclass
class Dot:
    id: str
    token: str
    mac: str


async def make_dots(
    database_url: str, user_id: str, count: int, *, board: str = BOARD, version: str = "1.0.0"
) -> list[Dot]:
    """`count` claimed Dots of `user_id`, each with a device credential (written directly:
    claiming a hundred Dots through spoken codes would test pairing, not rollouts)."""
    dots = []
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(count):
            mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))
            token = "od_dt_" + secrets.token_urlsafe(24)
            device_id = await conn.fetchval(
                "insert into public.devices (user_id, serial_number, hardware_id, display_name)"
                " values ($1, $2, $2, $3) returning id",
                uuid.UUID(user_id),
                mac,
                f"Dot {mac[-5:]}",
            )
            await conn.execute(
                "insert into public.device_credentials (device_id, prefix, token_hash)"
                " values ($1, $2, $3)",
                device_id,
                token[:12],
                hashlib.sha256(token.encode()).hexdigest(),
            )
            await conn.execute(
                "insert into public.device_state (device_id, firmware_version, board)"
                " values ($1, $2, $3)",
                device_id,
                version,
                board,
            )
            dots.append(Dot(str(device_id), token, mac))
    finally:
        await conn.close()
    return dots


def system_info(version: str, board: str = BOARD) -> dict[str, Any]:
    return {
        "version": 2,
        "application": {"name": "xiaozhi", "version": version},
        "board": {"type": board, "name": board},
    }


async def ota(
    client: httpx.AsyncClient, dot: Dot, version: str, board: str = BOARD
) -> dict[str, Any]:
    """The OTA answer the runtime would get for this Dot reporting `version` on `board`."""
    response = await client.post(
        "/api/internal/device-activations/bootstrap",
        json={
            "deviceId": dot.mac,
            "clientId": str(uuid.uuid4()),
            "userAgent": f"{board}/{version}",
            "authorization": f"Bearer {dot.token}",
            "websocketUrl": "ws://dots.test:8787/ws",
            "systemInfo": system_info(version, board),
        },
        headers=internal_headers(),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "activation" not in body
    return body


async def upload(
    client: httpx.AsyncClient,
    user: dict[str, str],
    version: str,
    *,
    board: str = BOARD,
    size: int = 4096,
    notes: str = "",
    content: bytes | None = None,
) -> httpx.Response:
    data = content if content is not None else build_app_image(version, size)
    return await client.post(
        "/api/firmware/releases",
        data={"board": board, "version": version, "notes": notes},
        files={"file": (f"{board}-{version}.bin", data, "application/octet-stream")},
        headers=auth(user),
    )
