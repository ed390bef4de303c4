"""Dot devices: list, manual pairing, update/bind/unbind, soft delete, claim by spoken code."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter

from functions import agents_store, devices_store, firmware_pin
from functions.deps import Ctx, UserDb
from functions.errors import BadRequest, Conflict, NotFound, TooManyRequests
from functions.models import ClaimBody, DeviceCreate, DeviceEnvelope, DeviceList, DeviceUpdate, Ok
from shared.tokens import normalize_code, token_hash

router = APIRouter(prefix="/api", tags=["devices"])

_NOT_FOUND = "Device not found."
CLAIM_MAX_FAILURES = 5
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
    device_id = await ctx.conn.fetchval(
        "insert into public.devices (user_id, serial_number, model, display_name, device_endpoint)"
        " values ($1, $2, $3, $4, $5) returning id",
        uuid.UUID(ctx.user_id),
        serial,
        body.model.strip() or "Dot S3",
        name,
        body.device_endpoint if body.device_endpoint is not None else "demo://custom-dot",
    )
    await ctx.conn.execute(
        "insert into public.device_state (device_id, availability, ip_address)"
        " values ($1, 'unknown', $2)",
        device_id,
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
    """Edit fields and state; `boundAgentId` binds (new deployment), `null` unbinds."""
    row = await devices_store.find_row(ctx.conn, device_key)
    if row is None:
        raise NotFound(_NOT_FOUND)
    device_id = row["id"]
    sent = body.model_fields_set
    if sent & {"name", "model", "serial_number", "device_endpoint"}:
        await ctx.conn.execute(
            "update public.devices set display_name = coalesce($2, display_name),"
            " model = coalesce($3, model), serial_number = coalesce($4, serial_number),"
            " device_endpoint = coalesce($5, device_endpoint), updated_at = now() where id = $1",
            device_id,
            body.name.strip() if body.name else None,
            body.model.strip() if body.model else None,
            body.serial_number.strip() if body.serial_number else None,
            body.device_endpoint,
        )
    if sent & {"availability", "ip_address", "last_seen_at", "update_mode"}:
        await ctx.conn.execute(
            "insert into public.device_state (device_id, availability, ip_address, last_seen_at,"
            " update_mode) values ($1, coalesce($2, 'unknown'), coalesce($3, ''), $4,"
            " coalesce($5, 'idle')) on conflict (device_id) do update set"
            " availability = coalesce($2, device_state.availability),"
            " ip_address = coalesce($3, device_state.ip_address),"
            " last_seen_at = coalesce($4, device_state.last_seen_at),"
            " update_mode = coalesce($5, device_state.update_mode), updated_at = now()",
            device_id,
            body.availability,
            body.ip_address,
            _parse_time(body.last_seen_at, "lastSeenAt"),
            body.update_mode,
        )
    if "firmware_pin" in sent:
        await firmware_pin.apply(ctx.conn, row, body.firmware_pin)
    await _apply_binding(ctx, row, body)
    return await _envelope(ctx, device_id)


async def _apply_binding(ctx: Ctx, row: object, body: DeviceUpdate) -> None:
    from asyncpg import Record

    assert isinstance(row, Record)
    sent = body.model_fields_set
    current = str(row["bound_agent_id"]) if row["bound_agent_name"] is not None else None
    if "bound_agent_id" in sent and body.bound_agent_id is None:
        if current is not None:
            await devices_store.unbind(ctx.conn, row["id"])
        return
    target = body.bound_agent_id if "bound_agent_id" in sent else current
    if target is None:
        return
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
        return
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


@router.delete("/dot-devices/{device_key}", response_model=Ok)
async def delete_device(device_key: str, ctx: UserDb) -> Ok:
    """Soft delete; revokes the device's credentials and removes its binding."""
    row = await devices_store.find_row(ctx.conn, device_key)
    if row is None:
        raise NotFound(_NOT_FOUND)
    await devices_store.unbind(ctx.conn, row["id"])
    await ctx.conn.execute("select private.revoke_device_credentials($1)", row["id"])
    await ctx.conn.execute(
        "update public.devices set status = 'removed', deleted_at = now(), updated_at = now()"
        " where id = $1",
        row["id"],
    )
    return Ok()


@router.post("/dot-devices/{device_key}/memory/reset", response_model=Ok)
async def reset_device_memory(device_key: str, ctx: UserDb) -> Ok:
    """Forget the device's conversation: later sockets start with an empty memory, and a
    runtime holding the device now is told through NOTIFY opendot_device_memory."""
    row = await devices_store.find_row(ctx.conn, device_key)
    if row is None:
        raise NotFound(_NOT_FOUND)
    await ctx.conn.execute(
        "insert into public.device_state (device_id, memory_reset_at) values ($1, now())"
        " on conflict (device_id) do update set memory_reset_at = now(), updated_at = now()",
        row["id"],
    )
    return Ok()


@router.post("/device-activations/claim", status_code=201, response_model=DeviceEnvelope)
async def claim(body: ClaimBody, ctx: UserDb) -> DeviceEnvelope:
    code = normalize_code(body.code)
    if len(code) != 6:
        raise BadRequest("Enter the 6-digit code the device spoke.")
    result = await ctx.conn.fetchrow(
        "select status, device_id from private.claim_activation($1, $2, $3, $4)",
        token_hash(code),
        ctx.settings.runtime_public_http_url,
        CLAIM_MAX_FAILURES,
        CLAIM_WINDOW_S,
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
    return await _envelope(ctx, result["device_id"])
