"""Internal device endpoints (runtime -> API): OTA bootstrap, activation, verify, state.

The bodies and answers are `shared.internal_api` models, which the runtime
builds and parses too. Decisions about who a device is live in SQL
(`pairing_store`); this module derives codes, bounds what a device reports,
and checks the activation HMAC against the operator's factory keys.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from functions import activation, agents_store, devices_store, keys_store, pairing_store
from functions.db import savepoint
from functions.deps import InternalDb, SettingsDep, services
from functions.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from functions.firmware_offer import firmware_answer
from shared.internal_api import (
    ActivateRequest,
    ActivationInfo,
    ActivationStatus,
    BootstrapRequest,
    DeviceConfig,
    DeviceGrant,
    DeviceRef,
    DeviceStateRequest,
    DeviceVerifyRequest,
    MemoryFacts,
    MemoryFactsRequest,
    Ok,
    OtaAnswer,
    ServerTime,
    WebsocketInfo,
)
from shared.secretbox import SecretBoxError, open_
from shared.tokens import (
    ACTIVATION_CODE_TTL_S,
    display_prefix,
    new_device_token,
    token_hash,
    verify_activation_hmac,
)

router = APIRouter(prefix="/api/internal", tags=["internal"])

# What a device may park in the database about itself: 8 KiB of JSON (a real
# xiaozhi OTA body is about 1.1 KiB). A larger report keeps only the keys the
# console shows, and nothing when even those are too large. The columns have
# the same bound (20261125000300_devices.sql).
MAX_SYSTEM_INFO = 8192
_SUMMARY_KEYS = ("version", "language", "mac_address", "chip_model_name", "application", "board")


def bounded_system_info(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    for candidate in (raw, {k: raw[k] for k in _SUMMARY_KEYS if k in raw}):
        try:
            size = len(json.dumps(candidate, default=str, ensure_ascii=False).encode("utf-8"))
        except (TypeError, ValueError, RecursionError):
            continue
        if size <= MAX_SYSTEM_INFO:
            return candidate
    return {}


def _code_hash(key: bytes, activation_id: uuid.UUID) -> str:
    return token_hash(activation.activation_code(key, activation_id))


@router.post(
    "/device-activations/bootstrap", response_model=OtaAnswer, response_model_exclude_none=True
)
async def bootstrap(
    body: BootstrapRequest, request: Request, conn: InternalDb, settings: SettingsDep
) -> OtaAnswer:
    identifier = (body.device_id or body.client_id or "").strip()[:128]
    if not identifier:
        raise BadRequest("Device-Id or Client-Id is required.")
    presented = activation.bearer(body.authorization)
    firmware, board = activation.firmware_facts(body.system_info, body.user_agent)
    facts = pairing_store.BootstrapFacts(
        identifier=identifier,
        client_id=(body.client_id or "").strip()[:128] or None,
        serial_number=(body.serial_number or "").strip()[:128] or None,
        bearer_hash=token_hash(presented) if presented else None,
        user_agent=body.user_agent,
        ip_address=body.ip_address,
        firmware_version=firmware,
        board=board,
        system_info=bounded_system_info(body.system_info),
    )
    key = activation.derivation_key(settings.runtime_internal_secret.get_secret_value())
    ws_url = activation.websocket_url(body.websocket_url, settings.runtime_public_http_url)
    for _attempt in range(5):
        new_id = uuid.uuid4()
        new_token = new_device_token()
        fresh = pairing_store.NewActivation(
            activation_id=new_id,
            code_hash=_code_hash(key, new_id),
            challenge_hash=token_hash(activation.activation_challenge(key, new_id)),
            token_prefix=display_prefix(new_token),
            token_hash=token_hash(new_token),
            ttl_s=ACTIVATION_CODE_TTL_S,
        )
        try:
            # A code collision must not abort the request's transaction: draw again.
            async with savepoint(conn, "bootstrap_attempt"):
                row = await pairing_store.bootstrap(
                    conn, facts, fresh, max_pending_per_address=settings.ota_max_pending_per_address
                )
        except asyncpg.UniqueViolationError:
            continue
        break
    else:
        raise Conflict("Could not allocate an activation code; try again.")
    server_time = ServerTime(**activation.server_time())
    if row["kind"] == "throttled":
        raise TooManyRequests(
            "Too many devices on this network are waiting to be paired; try again once a"
            " code has been used or has expired.",
            retry_after_s=ACTIVATION_CODE_TTL_S,
        )
    if row["kind"] == "connect":
        # Recognised by MAC and Client-Id only: connect information, nothing recorded
        # (a firmware offer keeps per-device bookkeeping, so it waits for the token).
        return OtaAnswer(server_time=server_time, websocket=WebsocketInfo(url=ws_url))
    if row["kind"] == "known":
        offer = await firmware_answer(
            conn,
            storage=services(request).firmware,
            settings=settings,
            device_id=row["device_id"],
            version=firmware,
            board=board,
            websocket_url=ws_url,
        )
        return OtaAnswer(
            server_time=server_time, websocket=WebsocketInfo(url=ws_url), firmware=offer
        )
    activation_id = row["activation_id"]
    token = presented if row["token_kept"] and presented else new_token
    return OtaAnswer(
        server_time=server_time,
        websocket=WebsocketInfo(url=ws_url, token=token),
        activation=ActivationInfo(
            message=activation.ACTIVATION_MESSAGE,
            code=activation.activation_code(key, activation_id),
            challenge=activation.activation_challenge(key, activation_id),
            timeout_ms=ACTIVATION_CODE_TTL_S * 1000,
        ),
    )


@router.post(
    "/device-activations/activate",
    response_model=ActivationStatus,
    responses={202: {"description": "pending"}, 404: {}, 409: {}, 403: {}},
)
async def activate(body: ActivateRequest, conn: InternalDb, settings: SettingsDep) -> JSONResponse:
    identifier = (body.device_id or body.client_id or "").strip()
    challenge = body.field("challenge")
    if not identifier and challenge is None:
        raise BadRequest("Device-Id, Client-Id or a challenge is required.")
    verified_serial = await _check_hmac(conn, settings.secrets_key_bytes, body, challenge)
    status = await pairing_store.activate(
        conn, token_hash(challenge) if challenge else None, identifier, verified_serial
    )
    if status == "pending":
        return JSONResponse(ActivationStatus(ok=False, status="pending").wire(), status_code=202)
    if status == "completed":
        return JSONResponse(ActivationStatus(ok=True, status="completed").wire(), status_code=200)
    if status == "gone":
        raise Conflict("This activation is no longer active.")
    raise NotFound("Activation was not found or has expired.")


async def _check_hmac(
    conn: asyncpg.Connection,
    secrets_key: bytes | None,
    body: ActivateRequest,
    challenge: str | None,
) -> str | None:
    """The serial whose factory key signed the challenge, or None when none is needed.

    Once the operator has registered any factory key, every activation must
    carry a valid HMAC-SHA256 of its challenge under the key of its serial
    number (the bootstrap's Serial-Number, else the poll's `serial_number`):
    a poll without one is refused (403), and the claim of an unproven request
    is refused too (private.claim_activation), since a code alone does not
    prove genuine hardware. Without registered keys the HMAC is checked when
    a key exists for the serial, and otherwise not needed.
    """
    required = await pairing_store.factory_keys_registered(conn)
    given = body.field("hmac")
    if challenge is None:
        if required:
            raise Forbidden(
                "This server only pairs devices that prove their factory key: the activation"
                " needs the challenge and its HMAC (Activation-Version 2)."
            )
        return None
    serial = await pairing_store.activation_serial(conn, token_hash(challenge))
    serial = serial or body.field("serial_number")
    sealed = await pairing_store.factory_key(conn, serial) if serial else None
    if sealed is None:
        if required:
            raise Forbidden("No factory key is registered for this device's serial number.")
        return None
    if secrets_key is None:
        raise Forbidden("Device keys are registered but OPENDOT_SECRETS_KEY is not set.")
    assert serial is not None
    try:
        device_key = bytes.fromhex(open_(secrets_key, sealed, f"device-factory-key:{serial}"))
    except (SecretBoxError, ValueError) as exc:
        raise Forbidden("The device key for this serial number cannot be opened.") from exc
    if not given or not verify_activation_hmac(device_key, challenge, given):
        raise Forbidden("Activation HMAC verification failed.")
    return serial


@router.post("/device-runtime/verify", response_model=DeviceGrant)
async def verify_device(body: DeviceVerifyRequest, conn: InternalDb) -> DeviceGrant:
    row = await pairing_store.verify_device(
        conn, token_hash(body.token.strip()), body.device_id, body.ip_address
    )
    if row is None or row["reason"] == "invalid":
        raise Unauthorized("Device credential is invalid or revoked.")
    if row["reason"] == "hardware_mismatch":
        raise Unauthorized("Device credential belongs to another device.")
    device = await devices_store.get_device(conn, row["device_id"])
    return DeviceGrant.model_validate(
        {
            "userId": str(row["user_id"]),
            "device": device,
            "agent": await agents_store.agent_for_device(conn, row["device_id"]),
            "memory": await devices_store.memory(conn, row["device_id"]),
            "facts": await devices_store.facts(conn, row["device_id"]),
            "timezone": await devices_store.timezone(conn, row["user_id"]),
            "secrets": await keys_store.sealed_secrets(conn, row["user_id"]),
        }
    )


def _device_uuid(raw: str) -> uuid.UUID:
    parsed = agents_store.parse_uuid(raw)
    if parsed is None:
        raise NotFound("Device not found.")
    return parsed


@router.post("/device-runtime/config", response_model=DeviceConfig)
async def device_config(body: DeviceRef, conn: InternalDb) -> DeviceConfig:
    device_id = _device_uuid(body.device_id)
    if not await pairing_store.device_exists(conn, device_id):
        raise NotFound("Device not found.")
    return DeviceConfig(agent=await agents_store.agent_for_device(conn, device_id))


@router.post("/device-runtime/state", response_model=Ok)
async def device_state(body: DeviceStateRequest, conn: InternalDb) -> Ok:
    if not await pairing_store.set_availability(
        conn, _device_uuid(body.device_id), body.availability
    ):
        raise NotFound("Device not found.")
    return Ok()


@router.post("/device-runtime/memory/reset", response_model=Ok)
async def reset_memory(body: DeviceRef, conn: InternalDb) -> Ok:
    if not await devices_store.reset_memory(conn, _device_uuid(body.device_id)):
        raise NotFound("Device not found.")
    return Ok()


@router.post("/device-runtime/memory/facts", response_model=MemoryFacts)
async def memory_facts(body: MemoryFactsRequest, conn: InternalDb) -> MemoryFacts:
    """The remember / forget tools: add a fact, or drop the facts that mention a text."""
    device_id = _device_uuid(body.device_id)
    facts = await devices_store.change_facts(conn, device_id, body.remember, body.forget)
    if facts is None:
        raise NotFound("Device not found.")
    return MemoryFacts(facts=facts)
