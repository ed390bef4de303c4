"""SQL of firmware releases, rollouts and device progress (RLS decides ownership)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from functions.agents_store import iso

_SELECT_RELEASE = """
select id, board, version, size, sha256, notes, created_at, storage_key
from public.firmware_releases
"""

_ROLLOUT = """
select r.id, r.release_id, r.board, rel.version, r.percent, r.status, r.device_ids,
       r.from_versions, r.created_at, r.updated_at, r.ended_at,
       count(s.device_id) as offered,
       count(s.downloaded_at) as downloaded,
       count(*) filter (where s.state = 'updated') as updated,
       count(*) filter (where s.state = 'stuck') as stuck
from public.firmware_rollouts r
join public.firmware_releases rel on rel.id = r.release_id
left join public.firmware_rollout_devices s on s.rollout_id = r.id and s.user_id = r.user_id
"""
_ROLLOUT_GROUP = " group by r.id, rel.version"


def release_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "board": row["board"],
        "version": row["version"],
        "size": row["size"],
        "sha256": row["sha256"],
        "notes": row["notes"],
        "createdAt": iso(row["created_at"]),
    }


def rollout_json(row: asyncpg.Record, *, tracks_downloads: bool) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "releaseId": str(row["release_id"]),
        "board": row["board"],
        "version": row["version"],
        "percent": row["percent"],
        "status": row["status"],
        "deviceIds": [str(d) for d in row["device_ids"]] if row["device_ids"] else None,
        "fromVersions": list(row["from_versions"]) if row["from_versions"] else None,
        "counts": {
            "offered": row["offered"],
            "downloaded": row["downloaded"] if tracks_downloads else None,
            "updated": row["updated"],
            "stuck": row["stuck"],
        },
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "endedAt": iso(row["ended_at"]),
    }


async def list_releases(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        _SELECT_RELEASE + " order by board, version_key desc"
    )
    return rows


async def get_release(conn: asyncpg.Connection, release_id: uuid.UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(_SELECT_RELEASE + " where id = $1", release_id)
    return row


async def release_exists(conn: asyncpg.Connection, board: str, key: Sequence[int]) -> str | None:
    """The version text of this owner's release the firmware cannot tell from `key`."""
    found: str | None = await conn.fetchval(
        "select version from public.firmware_releases where board = $1 and version_key = $2",
        board,
        list(key),
    )
    return found


async def insert_release(
    conn: asyncpg.Connection,
    *,
    release_id: uuid.UUID,
    user_id: str,
    board: str,
    version: str,
    key: Sequence[int],
    notes: str,
    size: int,
    sha256: str,
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        "insert into public.firmware_releases (id, user_id, board, version, version_key, notes,"
        " size, sha256) values ($1, $2, $3, $4, $5, $6, $7, $8)"
        " returning id, board, version, size, sha256, notes, created_at, storage_key",
        release_id,
        uuid.UUID(user_id),
        board,
        version,
        list(key),
        notes,
        size,
        sha256,
    )
    return row


async def live_rollout_of(conn: asyncpg.Connection, release_id: uuid.UUID) -> uuid.UUID | None:
    found: uuid.UUID | None = await conn.fetchval(
        "select id from public.firmware_rollouts where release_id = $1"
        " and status in ('active', 'paused') limit 1",
        release_id,
    )
    return found


async def delete_release(conn: asyncpg.Connection, release_id: uuid.UUID) -> bool:
    deleted = await conn.fetchval(
        "delete from public.firmware_releases where id = $1 returning 1", release_id
    )
    return deleted is not None


async def owned_devices(conn: asyncpg.Connection, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    rows = await conn.fetch(
        "select id from public.devices where id = any($1::uuid[]) and deleted_at is null",
        list(ids),
    )
    return {r["id"] for r in rows}


async def create_rollout(
    conn: asyncpg.Connection,
    *,
    user_id: str,
    release: asyncpg.Record,
    percent: int,
    device_ids: list[uuid.UUID] | None,
    from_versions: list[str] | None,
) -> uuid.UUID:
    """Supersede the board's live rollout (if any), then start this one."""
    await conn.execute(
        "update public.firmware_rollouts set status = 'superseded'"
        " where board = $1 and status in ('active', 'paused')",
        release["board"],
    )
    rollout_id: uuid.UUID = await conn.fetchval(
        "insert into public.firmware_rollouts (user_id, release_id, board, percent, device_ids,"
        " from_versions) values ($1, $2, $3, $4, $5, $6) returning id",
        uuid.UUID(user_id),
        release["id"],
        release["board"],
        percent,
        device_ids,
        from_versions,
    )
    return rollout_id


async def get_rollout(conn: asyncpg.Connection, rollout_id: uuid.UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        _ROLLOUT + " where r.id = $1" + _ROLLOUT_GROUP, rollout_id
    )
    return row


async def list_rollouts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        _ROLLOUT + _ROLLOUT_GROUP + " order by r.created_at desc"
    )
    return rows


async def rollout_devices(conn: asyncpg.Connection, rollout_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "select s.device_id, d.display_name, d.serial_number, s.state, s.offered_count,"
        " s.from_version, ds.firmware_version, s.first_offered_at, s.last_offered_at,"
        " s.downloaded_at, s.completed_at"
        " from public.firmware_rollout_devices s"
        " join public.devices d on d.id = s.device_id"
        " left join public.device_state ds on ds.device_id = s.device_id"
        " where s.rollout_id = $1 order by s.first_offered_at, d.display_name",
        rollout_id,
    )
    return [
        {
            "deviceId": str(r["device_id"]),
            "name": r["display_name"],
            "serialNumber": r["serial_number"],
            "state": r["state"],
            "offeredCount": r["offered_count"],
            "fromVersion": r["from_version"],
            "currentVersion": r["firmware_version"],
            "firstOfferedAt": iso(r["first_offered_at"]),
            "lastOfferedAt": iso(r["last_offered_at"]),
            "downloadedAt": iso(r["downloaded_at"]),
            "completedAt": iso(r["completed_at"]),
        }
        for r in rows
    ]


async def update_rollout(
    conn: asyncpg.Connection,
    rollout_id: uuid.UUID,
    *,
    percent: int | None = None,
    status: str | None = None,
) -> None:
    await conn.execute(
        "update public.firmware_rollouts set percent = coalesce($2, percent),"
        " status = coalesce($3, status) where id = $1",
        rollout_id,
        percent,
        status,
    )


# --- the service path (InternalDb: service_role) --------------------------------------


async def offer(
    conn: asyncpg.Connection,
    *,
    device_id: uuid.UUID,
    version: str,
    key: Sequence[int],
    board: str,
    max_offers: int,
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "select * from private.firmware_offer($1, $2, $3, $4, $5)",
        device_id,
        version,
        list(key),
        board,
        max_offers,
    )
    return row


async def downloaded(conn: asyncpg.Connection, rollout_id: uuid.UUID, device_id: uuid.UUID) -> bool:
    found: bool = await conn.fetchval(
        "select private.firmware_downloaded($1, $2)", rollout_id, device_id
    )
    return found
