"""Dot devices: list, manual pairing, update/bind/unbind, soft delete, claim by spoken code.

Stale writes. The console PUTs whole devices, and two PUTs sent back to back
("checking", then "idle") can arrive in either order. A PUT that carries
`updatedAt` is a conditional write: when the device changed since that
version (another PUT, the runtime reporting it online or offline), it is
refused with 409 and a sentence, and nothing is written. Refused rather than
silently ignored: a client that does not read the answer would otherwise
believe a change it made was kept; a 409 tells it to load the device again.
A PUT without `updatedAt` is applied as before (scripts, partial updates).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
from fastapi import APIRouter

from functions import agents_store, devices_store, firmware_pin, pairing_store
from functions.agents_store import iso
from functions.client_address import limit_key
from functions.deps import Ctx, UserDb
from functions.errors import BadRequest, Conflict, NotFound, TooManyRequests
from functions.models import ClaimBody, DeviceCreate, DeviceEnvelope, DeviceList, DeviceUpdate, Ok
from shared.tokens import normalize_code, token_hash

router = APIRouter(prefix="/api", tags=["devices"])

_NOT_FOUND = "Device not found."
# The claim limits themselves live in SQL (private.claim_activation); this is
# how long a throttled caller is told to wait: the window of those limits.
CLAIM_WINDOW_S = 600


def _parse_time(value: str | None, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"{field} must be an ISO-8601 timestamp.") from exc
    if parsed.tzinfo is None:
        raise BadRequest(f"{field} must include a time zone.")
    return parsed


async def _envelope(ctx: Ctx, device_id: uuid.UUID) -> DeviceEnvelope:
    device = await devices_store.get_device(ctx.conn, device_id)
    if device is None:
        raise NotFound(_NOT_FOUND)
    return DeviceEnvelope.model_validate({"device": device})


@router.get("/dot-devices", response_model=DeviceList)
async def list_devices(ctx: UserDb) -> DeviceList:
    return DeviceList.model_validate({"devices": await devices_store.list_devices(ctx.conn)})


@router.post("/dot-devices", status_code=201, response_model=DeviceEnvelope)
async def pair_device(body: DeviceCreate, ctx: UserDb) -> DeviceEnvelope:
    """Manual pairing (a binding target; it gets no credential)."""
    name, serial = body.name.strip(), body.serial_number.strip()
    if not name or not serial:
        raise BadRequest("name and serialNumber are required.")
    device_id = await devices_store.create_device(
        ctx.conn,
        ctx.user_id,
        serial,
        body.model.strip() or "Dot S3",
        name,
        body.device_endpoint if body.device_endpoint is not None else "demo://custom-dot",
        body.ip_address.strip(),
    )
    return await _envelope(ctx, device_id)


@router.get("/dot-devices/{device_key}", response_model=DeviceEnvelope)
async def get_device(device_key: str, ctx: UserDb) -> DeviceEnvelope:
    row = await devices_store.find_row(ctx.conn, device_key)
    if row is None:
        raise NotFound(_NOT_FOUND)
    return DeviceEnvelope.model_validate({"device": devices_store.device_json(row)})


@router.put("/dot-devices/{device_key}", response_model=DeviceEnvelope)
async def update_device(device_key: str, body: DeviceUpdate, ctx: UserDb) -> DeviceEnvelope:
    """Edit fields and state; `boundAgentId` binds (new deployment), `null` unbinds.

    With `updatedAt`, a conditional write: 409 when the device changed since then.
    """
    row = await devices_store.find_row(ctx.conn, device_key)
    if row is None:
        raise NotFound(_NOT_FOUND)
    device_id = row["id"]
    based_on = _parse_time(body.updated_at, "updatedAt")
    current = await devices_store.lock_version(ctx.conn, device_id)
    if current is None:
        raise NotFound(_NOT_FOUND)
    if based_on is not None and (iso(current) or "") > (iso(based_on) or ""):
        raise Conflict(
            f"This device changed at {iso(current)}, after the copy your change is based on"
            f" ({iso(based_on)}); nothing was saved. Load the device again and reapply the change."
        )
    sent = body.model_fields_set
    if sent & {"name", "model", "serial_number", "device_endpoint"}:
        await devices_store.update_fields(
            ctx.conn,
            device_id,
            name=body.name.strip() if body.name else None,
            model=body.model.strip() if body.model else None,
            serial=body.serial_number.strip() if body.serial_number else None,
            endpoint=body.device_endpoint,
        )
    if sent & {"availability", "ip_address", "last_seen_at", "update_mode"}:
        await devices_store.update_state(
            ctx.conn,
            device_id,
            availability=body.availability,
            ip_address=body.ip_address,
            last_seen_at=_parse_time(body.last_seen_at, "lastSeenAt"),
            update_mode=body.update_mode,
        )
    if "firmware_pin" in sent:
        await firmware_pin.apply(ctx.conn, row, body.firmware_pin)
    if await _apply_binding(ctx, row, body):
        await devices_store.touch(ctx.conn, device_id)
    return await _envelope(ctx, device_id)


async def _apply_binding(ctx: Ctx, row: asyncpg.Record, body: DeviceUpdate) -> bool:
    """Bind, rebind or unbind as the body asks; True when the binding changed."""
    sent = body.model_fields_set
    current = str(row["bound_agent_id"]) if row["bound_agent_name"] is not None else None
    if "bound_agent_id" in sent and body.bound_agent_id is None:
        if current is not None:
            await devices_store.unbind(ctx.conn, row["id"])
            return True
        return False
    target = body.bound_agent_id if "bound_agent_id" in sent else current
    if target is None:
        return False
    follow = body.follow_latest if body.follow_latest is not None else bool(row["follow_latest"])
    changed = (
        target != current
        or follow != bool(row["follow_latest"])
        or (
            "bound_config_version" in sent
            and body.bound_config_version is not None
            and body.bound_config_version != row["applied_config_version"]
        )
        or ("bound_at" in sent and body.bound_at is not None and target != current)
    )
    if not changed:
        return False
    agent_id = agents_store.parse_uuid(target)
    agent_row = await agents_store.fetch_row(ctx.conn, agent_id) if agent_id else None
    if agent_row is None:
        raise NotFound("Agent not found.")
    if agent_row["agent_version_id"] is None:
        raise Conflict("Agent has no version to deploy.")
    await devices_store.bind(
        ctx.conn,
        user_id=ctx.user_id,
        device=row,
        agent_row=agent_row,
        follow_latest=follow,
        config_version=body.bound_config_version,
        bound_at=_parse_time(body.bound_at, "boundAt"),
    )
    return True


@router.delete("/dot-devices/{device_key}", response_model=Ok)
async def delete_device(device_key: str, ctx: UserDb) -> Ok:
    """Soft delete; revokes the device's credentials and removes its binding."""
    row = await devices_store.find_row(ctx.conn, device_key)
    if row is None:
        raise NotFound(_NOT_FOUND)
    await devices_store.remove(ctx.conn, row["id"])
    return Ok()


@router.post("/dot-devices/{device_key}/memory/reset", response_model=Ok)
async def reset_device_memory(device_key: str, ctx: UserDb) -> Ok:
    """Forget the device's conversation: later sockets start with an empty memory, and a
    runtime holding the device now is told through NOTIFY opendot_device_memory."""
    row = await devices_store.find_row(ctx.conn, device_key)
    if row is None or not await devices_store.reset_memory(ctx.conn, row["id"]):
        raise NotFound(_NOT_FOUND)
    return Ok()


@router.post("/device-activations/claim", status_code=201, response_model=DeviceEnvelope)
async def claim(body: ClaimBody, ctx: UserDb) -> DeviceEnvelope:
    """Pair the device that spoke this code. Wrong codes are limited per user, per client
    address, and per pending code (private.claim_activation states the odds)."""
    code = normalize_code(body.code)
    if len(code) != 6:
        raise BadRequest("Enter the 6-digit code the device spoke.")
    result = await pairing_store.claim(
        ctx.conn,
        token_hash(code),
        ctx.settings.runtime_public_http_url,
        limit_key(ctx.client_ip),
    )
    status = result["status"] if result else "not_found"
    if status == "throttled":
        raise TooManyRequests(
            "Too many wrong codes. Wait a few minutes and try again.",
            retry_after_s=CLAIM_WINDOW_S,
        )
    if status == "not_found":
        # commit=True: the failed attempt must count towards the limit.
        raise NotFound("Activation code was not found or expired.", commit=True)
    if status == "conflict":
        raise Conflict("This device is already paired to another account.")
    if status == "unverified":
        raise Conflict(
            "This Dot has not proved it is genuine hardware yet (its activation HMAC)."
            " Keep it switched on for a few seconds, then enter the code again."
        )
    assert result is not None
    return await _envelope(ctx, result["device_id"])
