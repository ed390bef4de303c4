"""SDK keys and sealed provider secrets in the database.

Owners act under RLS: they list, create and revoke their keys (the hash is
not even readable to them) and write secrets they can never read back. Only
the internal API (service role) reads a user's sealed secrets, to hand them
to the runtime.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

# Every key query returns these columns (never token_hash).
_LIST = (
    "select id, name, prefix, created_at, last_used_at, expires_at, status"
    " from public.api_keys order by created_at desc"
)
_INSERT = (
    "insert into public.api_keys (user_id, name, prefix, token_hash, expires_at)"
    " values ($1, $2, $3, $4, $5)"
    " returning id, name, prefix, created_at, last_used_at, expires_at, status"
)
_REVOKE = (
    "update public.api_keys set status = 'revoked',"
    " revoked_at = coalesce(revoked_at, now()), updated_at = now()"
    " where id = $1 returning id, name, prefix, created_at, last_used_at, expires_at, status"
)


async def list_keys(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(_LIST)
    return rows


async def create_key(
    conn: asyncpg.Connection,
    user_id: str,
    name: str,
    prefix: str,
    hashed: str,
    expires: datetime | None,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        _INSERT,
        uuid.UUID(user_id),
        name,
        prefix,
        hashed,
        expires,
    )
    assert row is not None
    return row


async def revoke_key(conn: asyncpg.Connection, key_id: uuid.UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(_REVOKE, key_id)
    return row


async def lookup_key(conn: asyncpg.Connection, hashed: str) -> asyncpg.Record | None:
    """key_id, user_id, status, expires_at of an SDK key by its hash (service role)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "select key_id, user_id, status, expires_at from private.api_key_lookup($1)", hashed
    )
    return row


# --- provider secrets ----------------------------------------------------------------------


async def list_secret_names(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "select name, created_at, updated_at from public.user_secrets order by name"
    )
    return rows


async def put_secret(
    conn: asyncpg.Connection, user_id: str, name: str, sealed: str
) -> asyncpg.Record:
    # Update-then-insert rather than ON CONFLICT: owners hold no SELECT on
    # `ciphertext`, which an upsert's EXCLUDED reference would need.
    row: asyncpg.Record | None = await conn.fetchrow(
        "update public.user_secrets set ciphertext = $2, updated_at = now() where name = $1"
        " returning name, created_at, updated_at",
        name,
        sealed,
    )
    if row is None:
        row = await conn.fetchrow(
            "insert into public.user_secrets (user_id, name, ciphertext) values ($1, $2, $3)"
            " returning name, created_at, updated_at",
            uuid.UUID(user_id),
            name,
            sealed,
        )
    assert row is not None
    return row


async def delete_secret(conn: asyncpg.Connection, name: str) -> bool:
    deleted = await conn.fetchval(
        "delete from public.user_secrets where name = $1 returning 1", name
    )
    return deleted is not None


async def sealed_secrets(conn: asyncpg.Connection, user_id: uuid.UUID) -> dict[str, str]:
    """name -> ciphertext of every secret of a user (service role, for the runtime)."""
    rows = await conn.fetch(
        "select name, ciphertext from public.user_secrets where user_id = $1", user_id
    )
    return {r["name"]: r["ciphertext"] for r in rows}
