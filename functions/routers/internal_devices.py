"""Internal device endpoints (runtime -> API): OTA bootstrap, activation, verify, state."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from functions import activation, agents_store, devices_store
from functions.deps import InternalDb, SettingsDep, services
from functions.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from functions.firmware_offer import firmware_answer
from functions.models import Ok, RequestBody
from shared.secretbox import SecretBoxError, open_
from shared.tokens import (
    ACTIVATION_CODE_TTL_S,
    display_prefix,
    new_device_token,
    token_hash,
    verify_activation_hmac,
)

router = APIRouter(prefix="/api/internal", tags=["internal"])

_MAX_SYSTEM_INFO = 16_384
_S = Field(default=None, max_length=512)


class BootstrapBody(RequestBody):
    device_id: str | None = _S
    client_id: str | None = _S
    serial_number: str | None = _S
    user_agent: str | None = _S
    ip_address: str | None = _S
    authorization: str | None = Field(default=None, max_length=4096)
    websocket_url: str | None = Field(default=None, max_length=2048)
    activation_version: str | int | None = None
    system_info: Any = None


class ActivateBody(RequestBody):
    device_id: str | None = _S
    client_id: str | None = _S
    serial_number: str | None = _S
    algorithm: str | None = _S
    challenge: str | None = _S
    hmac: str | None = _S


class VerifyBody(RequestBody):
    token: str = Field(min_length=1, max_length=512)
    device_id: str | None = _S
    client_id: str | None = _S
    ip_address: str | None = _S
    user_agent: str | None = _S
    protocol_version: int | str | None = None


class DeviceRef(RequestBody):
    device_id: str = Field(min_length=1, max_length=64)


class StateBody(DeviceRef):
    availability: str = Field(pattern="^(available|offline|unknown)$")


def _system_info(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    return raw if len(json.dumps(raw, default=str)) <= _MAX_SYSTEM_INFO else {}


@router.post("/device-activations/bootstrap")
async def bootstrap(
    body: BootstrapBody, request: Request, conn: InternalDb, settings: SettingsDep
) -> dict[str, Any]:
    identifier = (body.device_id or body.client_id or "").strip()
    if not identifier:
        raise BadRequest("Device-Id or Client-Id is required.")
    presented = activation.bearer(body.authorization)
    info = _system_info(body.system_info)
    firmware, board = activation.firmware_facts(info, body.user_agent)
    key = activation.derivation_key(settings.runtime_internal_secret.get_secret_value())
    answer: dict[str, Any] = {"server_time": activation.server_time()}
    ws = {"url": activation.websocket_url(body.websocket_url, settings.runtime_public_http_url)}
    for _attempt in range(5):
        new_id = uuid.uuid4()
        new_token = new_device_token()
        # A savepoint: a code collision must not abort the request's transaction.
        await conn.execute("savepoint bootstrap_attempt")
        try:
            row = await conn.fetchrow(
                "select * from private.device_bootstrap($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                " $10, $11, $12, $13, $14, $15)",
                identifier[:128],
                body.client_id,
                (body.serial_number or "").strip()[:128] or None,
                token_hash(presented) if presented else None,
                body.user_agent,
                body.ip_address,
                firmware,
                board,
                info,
                new_id,
                _code_hash(key, new_id),
                token_hash(activation.activation_challenge(key, new_id)),
                display_prefix(new_token),
                token_hash(new_token),
                ACTIVATION_CODE_TTL_S,
            )
        except asyncpg.UniqueViolationError:
            await conn.execute("rollback to savepoint bootstrap_attempt")
            continue
        await conn.execute("release savepoint bootstrap_attempt")
        break
    else:
        raise Conflict("Could not allocate an activation code; try again.")
    assert row is not None
    if row["kind"] == "known":
        answer["websocket"] = {**ws, "version": 1}
        offer = await firmware_answer(
            conn,
            storage=services(request).firmware,
            settings=settings,
            device_id=row["device_id"],
            version=firmware,
            board=board,
            websocket_url=ws["url"],
        )
        if offer is not None:
            answer["firmware"] = offer
        return answer
    activation_id = row["activation_id"]
    token = presented if row["token_kept"] and presented else new_token
    answer["websocket"] = {**ws, "token": token, "version": 1}
    answer["activation"] = {
        "message": activation.ACTIVATION_MESSAGE,
        "code": activation.activation_code(key, activation_id),
        "challenge": activation.activation_challenge(key, activation_id),
        "timeout_ms": ACTIVATION_CODE_TTL_S * 1000,
    }
    return answer


def _code_hash(key: bytes, activation_id: uuid.UUID) -> str:
    return token_hash(activation.activation_code(key, activation_id))


@router.post(
    "/device-activations/activate",
    responses={202: {"description": "pending"}, 404: {}, 409: {}, 403: {}},
)
async def activate(body: ActivateBody, conn: InternalDb, settings: SettingsDep) -> JSONResponse:
    identifier = (body.device_id or body.client_id or "").strip()
    challenge = (body.challenge or "").strip() or None
    if not identifier and challenge is None:
        raise BadRequest("Device-Id, Client-Id or a challenge is required.")
    if challenge is not None:
        await _check_hmac(conn, settings.secrets_key_bytes, body, challenge)
    row = await conn.fetchrow(
        "select * from private.device_activate($1, $2)",
        token_hash(challenge) if challenge else None,
        identifier,
    )
    status = row["status"] if row else "not_found"
    if status == "pending":
        return JSONResponse({"ok": False, "status": "pending"}, status_code=202)
    if status == "completed":
        return JSONResponse({"ok": True, "status": "completed"}, status_code=200)
    if status == "gone":
        raise Conflict("This activation is no longer active.")
    raise NotFound("Activation was not found or has expired.")


async def _check_hmac(
    conn: asyncpg.Connection, secrets_key: bytes | None, body: ActivateBody, challenge: str
) -> None:
    """Verify the v2 HMAC when a factory key is registered for the activation's serial."""
    serial = await conn.fetchval(
        "select serial_number from public.device_activation_requests where challenge_hash = $1",
        token_hash(challenge),
    )
    serial = serial or (body.serial_number or "").strip()
    if not serial:
        return
    sealed = await conn.fetchval(
        "select key_ciphertext from public.device_factory_keys"
        " where serial_number = $1 and revoked_at is null",
        serial,
    )
    if sealed is None:
        return
    if secrets_key is None:
        raise Forbidden("Device keys are registered but OPENDOT_SECRETS_KEY is not set.")
    try:
        device_key = bytes.fromhex(open_(secrets_key, sealed, f"device-factory-key:{serial}"))
    except (SecretBoxError, ValueError) as exc:
        raise Forbidden("The device key for this serial number cannot be opened.") from exc
    if not body.hmac or not verify_activation_hmac(device_key, challenge, body.hmac):
        raise Forbidden("Activation HMAC verification failed.")


async def _secrets(conn: asyncpg.Connection, user_id: uuid.UUID) -> dict[str, str]:
    rows = await conn.fetch(
        "select name, ciphertext from public.user_secrets where user_id = $1", user_id
    )
    return {r["name"]: r["ciphertext"] for r in rows}


@router.post("/device-runtime/verify")
async def verify_device(body: VerifyBody, conn: InternalDb) -> dict[str, Any]:
    row = await conn.fetchrow(
        "select * from private.device_verify($1, $2, $3)",
        token_hash(body.token.strip()),
        body.device_id,
        body.ip_address,
    )
    if row is None or row["reason"] == "invalid":
        raise Unauthorized("Device credential is invalid or revoked.")
    if row["reason"] == "hardware_mismatch":
        raise Unauthorized("Device credential belongs to another device.")
    device = await devices_store.get_device(conn, row["device_id"])
    agent = await agents_store.agent_for_device(conn, row["device_id"])
    return {
        "userId": str(row["user_id"]),
        "device": device,
        "agent": agent,
        "memory": await devices_store.memory(conn, row["device_id"]),
        "secrets": await _secrets(conn, row["user_id"]),
    }


def _device_uuid(raw: str) -> uuid.UUID:
    parsed = agents_store.parse_uuid(raw)
    if parsed is None:
        raise NotFound("Device not found.")
    return parsed


@router.post("/device-runtime/config")
async def device_config(body: DeviceRef, conn: InternalDb) -> dict[str, Any]:
    device_id = _device_uuid(body.device_id)
    exists = await conn.fetchval(
        "select 1 from public.devices where id = $1 and deleted_at is null", device_id
    )
    if exists is None:
        raise NotFound("Device not found.")
    return {"agent": await agents_store.agent_for_device(conn, device_id)}


@router.post("/device-runtime/state", response_model=Ok)
async def device_state(body: StateBody, conn: InternalDb) -> Ok:
    device_id = _device_uuid(body.device_id)
    updated = await conn.fetchval(
        "update public.device_state set availability = $2, last_seen_at = now(),"
        " updated_at = now() where device_id = $1 returning 1",
        device_id,
        body.availability,
    )
    if updated is None:
        raise NotFound("Device not found.")
    return Ok()


@router.post("/device-runtime/memory/reset", response_model=Ok)
async def reset_memory(body: DeviceRef, conn: InternalDb) -> Ok:
    device_id = _device_uuid(body.device_id)
    updated = await conn.fetchval(
        "insert into public.device_state (device_id, memory_reset_at)"
        " select id, now() from public.devices where id = $1 and deleted_at is null"
        " on conflict (device_id) do update set memory_reset_at = now(), updated_at = now()"
        " returning 1",
        device_id,
    )
    if updated is None:
        raise NotFound("Device not found.")
    return Ok()
