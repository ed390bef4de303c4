"""Devices with their live state and current binding (deployment + active target).

A device's `updatedAt` is the version of the whole document the console sees:
the later of the device row's and its state's `updated_at`, so it moves when
the owner edits the device and when the runtime reports it online or
offline. Every owner write path bumps one of them (a binding change touches
the device row), which is what the stale-write check of `PUT
/api/dot-devices/:id` compares against (`lock_version`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from functions.agents_store import iso, parse_uuid
from shared import internal_api

_SELECT = """
select d.id, d.user_id, d.display_name, d.model, d.serial_number, d.device_endpoint,
       d.hardware_id, d.firmware_pin, d.updated_at,
       coalesce(s.availability, 'unknown') as availability,
       coalesce(s.ip_address, '') as ip_address, s.last_seen_at,
       coalesce(s.update_mode, 'idle') as update_mode, s.firmware_version, s.board,
       t.applied_at as bound_at, t.applied_config_version, dp.agent_id as bound_agent_id,
       a.name as bound_agent_name, dp.activated_at,
       case when coalesce(dp.follow_latest, false)
            then (select max(v.version_number) from public.agent_versions v where v.agent_id = a.id)
            else pinned.version_number end as bound_agent_version, coalesce(dp.follow_latest, false)
         as follow_latest, greatest(d.updated_at, s.updated_at) as version_at
from public.devices d
left join public.device_state s on s.device_id = d.id
left join public.deployment_device_targets t on t.device_id = d.id and t.status = 'active'
left join public.deployments dp on dp.id = t.deployment_id and dp.status = 'active'
left join public.agents a on a.id = dp.agent_id and a.deleted_at is null
left join public.agent_versions pinned on pinned.id = dp.agent_version_id
where d.deleted_at is null
"""


def device_json(row: asyncpg.Record) -> dict[str, Any]:
    bound = row["bound_agent_id"] if row["bound_agent_name"] is not None else None
    return {
        "id": str(row["id"]),
        "name": row["display_name"],
        "model": row["model"],
        "serialNumber": row["serial_number"],
        "availability": row["availability"],
        "ipAddress": row["ip_address"],
        "deviceEndpoint": row["device_endpoint"],
        "lastSeenAt": iso(row["last_seen_at"]),
        "boundAgentId": str(bound) if bound else None,
        "boundAgentName": row["bound_agent_name"] if bound else None,
        "boundAgentVersion": row["bound_agent_version"] if bound else None,
        "boundConfigVersion": iso(row["activated_at"]) if bound else None,
        "boundAt": iso(row["bound_at"]) if bound else None,
        "followLatest": bool(row["follow_latest"]) if bound else False,
        "updateMode": row["update_mode"],
        "firmwareVersion": row["firmware_version"],
        "board": row["board"],
        "firmwarePin": row["firmware_pin"],
        "updatedAt": iso(row["version_at"]),
    }


async def list_devices(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(_SELECT + " order by d.updated_at desc")
    return [device_json(r) for r in rows]


async def find_row(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    """A device by platform uuid, serial number, or `runtime:<serial>`."""
    device_id = parse_uuid(key)
    if device_id is not None:
        row: asyncpg.Record | None = await conn.fetchrow(_SELECT + " and d.id = $1", device_id)
        if row is not None:
            return row
    serial = key[len("runtime:") :] if key.startswith("runtime:") else key
    return await conn.fetchrow(
        _SELECT + " and d.serial_number = $1 order by d.updated_at desc limit 1", serial
    )


async def get_device(conn: asyncpg.Connection, device_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(_SELECT + " and d.id = $1", device_id)
    return device_json(row) if row else None


async def unbind(conn: asyncpg.Connection, device_id: uuid.UUID) -> None:
    await conn.execute(
        "update public.deployment_device_targets set status = 'removed', updated_at = now()"
        " where device_id = $1 and status = 'active'",
        device_id,
    )


async def bind(
    conn: asyncpg.Connection,
    *,
    user_id: str,
    device: asyncpg.Record,
    agent_row: asyncpg.Record,
    follow_latest: bool,
    config_version: str | None,
    bound_at: datetime | None,
) -> None:
    """Supersede the active target, then a new deployment + active target."""
    previous = await conn.fetch(
        "update public.deployment_device_targets set status = 'superseded', updated_at = now()"
        " where device_id = $1 and status = 'active' returning deployment_id",
        device["id"],
    )
    if previous:
        await conn.execute(
            "update public.deployments set status = 'superseded', superseded_at = now(),"
            " updated_at = now() where id = any($1::uuid[]) and status = 'active'"
            " and not exists (select 1 from public.deployment_device_targets t"
            "   where t.deployment_id = deployments.id and t.status = 'active')",
            [r["deployment_id"] for r in previous],
        )
    deployment_id = await conn.fetchval(
        "insert into public.deployments (user_id, agent_id, agent_version_id, pipeline_version_id,"
        " name, follow_latest) values ($1, $2, $3, $4, $5, $6) returning id",
        uuid.UUID(user_id),
        agent_row["id"],
        agent_row["agent_version_id"],
        agent_row["pipeline_version_id"],
        f"{agent_row['name']} -> {device['display_name']}"[:400],
        follow_latest,
    )
    version = config_version or iso(agent_row["updated_at"])
    await conn.execute(
        "insert into public.deployment_device_targets (deployment_id, device_id, status,"
        " desired_config_version, applied_config_version, applied_at)"
        " values ($1, $2, 'active', $3, $3, coalesce($4, now()))",
        deployment_id,
        device["id"],
        version,
        bound_at,
    )


async def memory(
    conn: asyncpg.Connection, device_id: uuid.UUID, limit_turns: int = 12
) -> list[dict[str, str]]:
    """The device's last completed turns since its memory was reset, oldest first."""
    rows = await conn.fetch(
        "select t.transcript, t.reply_text from public.voice_turns t"
        " join public.voice_sessions s on s.id = t.session_id"
        " left join public.device_state ds on ds.device_id = s.device_id"
        " where s.device_id = $1 and t.outcome = 'completed'"
        " and (ds.memory_reset_at is null"
        " or coalesce(t.ended_at, t.created_at) > ds.memory_reset_at)"
        " order by s.started_at desc, t.turn_index desc limit $2",
        device_id,
        limit_turns,
    )
    messages: list[dict[str, str]] = []
    for row in reversed(rows):
        if row["transcript"]:
            messages.append({"role": "user", "content": row["transcript"]})
        if row["reply_text"]:
            messages.append({"role": "assistant", "content": row["reply_text"]})
    return messages


# --- owner writes (under RLS) --------------------------------------------------------------


async def create_device(
    conn: asyncpg.Connection,
    user_id: str,
    serial: str,
    model: str,
    name: str,
    endpoint: str,
    ip_address: str,
) -> uuid.UUID:
    """Manual pairing: a binding target without a credential."""
    device_id: uuid.UUID = await conn.fetchval(
        "insert into public.devices (user_id, serial_number, model, display_name, device_endpoint)"
        " values ($1, $2, $3, $4, $5) returning id",
        uuid.UUID(user_id),
        serial,
        model,
        name,
        endpoint,
    )
    await conn.execute(
        "insert into public.device_state (device_id, availability, ip_address)"
        " values ($1, 'unknown', $2)",
        device_id,
        ip_address,
    )
    return device_id


async def lock_version(conn: asyncpg.Connection, device_id: uuid.UUID) -> datetime | None:
    """Lock the device and its state row for this transaction; the document's version.

    Concurrent PUTs for one device queue here, so each compares the version
    the previous one committed, never one it overwrote.
    """
    row = await conn.fetchrow(
        "select d.updated_at from public.devices d where d.id = $1 for update", device_id
    )
    if row is None:
        return None
    state_at = await conn.fetchval(
        "select s.updated_at from public.device_state s where s.device_id = $1 for update",
        device_id,
    )
    version: datetime = row["updated_at"]
    return max(version, state_at) if state_at is not None else version


async def update_fields(
    conn: asyncpg.Connection,
    device_id: uuid.UUID,
    *,
    name: str | None,
    model: str | None,
    serial: str | None,
    endpoint: str | None,
) -> None:
    await conn.execute(
        "update public.devices set display_name = coalesce($2, display_name),"
        " model = coalesce($3, model), serial_number = coalesce($4, serial_number),"
        " device_endpoint = coalesce($5, device_endpoint), updated_at = now() where id = $1",
        device_id,
        name,
        model,
        serial,
        endpoint,
    )


async def update_state(
    conn: asyncpg.Connection,
    device_id: uuid.UUID,
    *,
    availability: str | None,
    ip_address: str | None,
    last_seen_at: datetime | None,
    update_mode: str | None,
) -> None:
    await conn.execute(
        "insert into public.device_state (device_id, availability, ip_address, last_seen_at,"
        " update_mode) values ($1, coalesce($2, 'unknown'), coalesce($3, ''), $4,"
        " coalesce($5, 'idle')) on conflict (device_id) do update set"
        " availability = coalesce($2, device_state.availability),"
        " ip_address = coalesce($3, device_state.ip_address),"
        " last_seen_at = coalesce($4, device_state.last_seen_at),"
        " update_mode = coalesce($5, device_state.update_mode), updated_at = now()",
        device_id,
        availability,
        ip_address,
        last_seen_at,
        update_mode,
    )


async def touch(conn: asyncpg.Connection, device_id: uuid.UUID) -> None:
    """A new version of the device document (after a binding change)."""
    await conn.execute("update public.devices set updated_at = now() where id = $1", device_id)


async def remove(conn: asyncpg.Connection, device_id: uuid.UUID) -> None:
    """Soft delete: binding removed, credentials revoked, the row marked removed."""
    await unbind(conn, device_id)
    await conn.execute("select private.revoke_device_credentials($1)", device_id)
    await conn.execute(
        "update public.devices set status = 'removed', deleted_at = now(), updated_at = now()"
        " where id = $1",
        device_id,
    )


async def reset_memory(conn: asyncpg.Connection, device_id: uuid.UUID) -> bool:
    """Forget the device's conversation from now: its remembered facts go too (a trigger)
    and NOTIFY opendot_device_memory tells the runtime holding it.

    Works for the owner under RLS and for the runtime as service role; False
    when the device does not exist (or is not the caller's).
    """
    updated = await conn.fetchval(
        "insert into public.device_state (device_id, memory_reset_at)"
        " select id, now() from public.devices where id = $1 and deleted_at is null"
        " on conflict (device_id) do update set memory_reset_at = now(), updated_at = now()"
        " returning 1",
        device_id,
    )
    return updated is not None


MAX_FACTS = 50
MAX_FACT_CHARS = internal_api.MAX_FACT_CHARS


async def facts(conn: asyncpg.Connection, device_id: uuid.UUID) -> list[str]:
    value = await conn.fetchval(
        "select memory_facts from public.device_state where device_id = $1", device_id
    )
    return [f for f in value or [] if isinstance(f, str)]


async def timezone(conn: asyncpg.Connection, user_id: uuid.UUID) -> str:
    value = await conn.fetchval(
        "select timezone from public.user_preferences where user_id = $1", user_id
    )
    return str(value or "UTC")


async def change_facts(
    conn: asyncpg.Connection, device_id: uuid.UUID, remember: str | None, forget: str | None
) -> list[str] | None:
    """Add `remember` (oldest facts go past the limit), drop facts containing `forget`."""
    exists = await conn.fetchval(
        "select 1 from public.devices where id = $1 and deleted_at is null", device_id
    )
    if exists is None:
        return None
    await conn.execute(
        "insert into public.device_state (device_id) values ($1) on conflict do nothing",
        device_id,
    )
    current = await conn.fetchval(
        "select memory_facts from public.device_state where device_id = $1 for update", device_id
    )
    kept = [f for f in current or [] if isinstance(f, str)]
    if forget:
        needle = forget.strip().lower()
        kept = [f for f in kept if needle not in f.lower()]
    if remember and remember.strip() not in kept:
        kept.append(" ".join(remember.split()))
    kept = kept[-MAX_FACTS:]
    await conn.execute(
        "update public.device_state set memory_facts = $2, updated_at = now() where device_id = $1",
        device_id,
        kept,
    )
    return kept
