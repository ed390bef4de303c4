"""SDK keys (`od_sk_`): the token is shown once; only a prefix and its hash are kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import APIRouter

from functions.agents_store import iso, parse_uuid
from functions.deps import UserDb
from functions.errors import NotFound
from functions.models import ApiKey, ApiKeyCreate, ApiKeyEnvelope, ApiKeyList
from shared.tokens import display_prefix, new_api_key, token_hash

router = APIRouter(prefix="/api/api-keys", tags=["api keys"])

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
    " where id = $1"
    " returning id, name, prefix, created_at, last_used_at, expires_at, status"
)


def key_json(row: asyncpg.Record, token: str | None = None) -> ApiKey:
    status = row["status"]
    expires = row["expires_at"]
    if status == "active" and expires is not None and expires <= datetime.now(UTC):
        status = "expired"
    return ApiKey(
        id=str(row["id"]),
        name=row["name"],
        token=token,
        prefix=row["prefix"],
        created_at=iso(row["created_at"]) or "",
        last_used_at=iso(row["last_used_at"]),
        expires_at=iso(expires),
        status=status,
    )


async def list_keys(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(_LIST)
    return [key_json(r).model_dump(by_alias=True) for r in rows]


@router.get("", response_model=ApiKeyList)
async def get_keys(ctx: UserDb) -> ApiKeyList:
    rows = await ctx.conn.fetch(_LIST)
    return ApiKeyList(api_keys=[key_json(r) for r in rows])


@router.post("", status_code=201, response_model=ApiKeyEnvelope)
async def create_key(body: ApiKeyCreate, ctx: UserDb) -> ApiKeyEnvelope:
    token = new_api_key()
    expires = (
        datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    )
    row = await ctx.conn.fetchrow(
        _INSERT,
        uuid.UUID(ctx.user_id),
        body.name.strip(),
        display_prefix(token),
        token_hash(token),
        expires,
    )
    return ApiKeyEnvelope(api_key=key_json(row, token))


@router.post("/{key_id}/revoke", response_model=ApiKeyEnvelope)
async def revoke_key(key_id: str, ctx: UserDb) -> ApiKeyEnvelope:
    parsed = parse_uuid(key_id)
    row = None
    if parsed is not None:
        row = await ctx.conn.fetchrow(
            _REVOKE,
            parsed,
        )
    if row is None:
        raise NotFound("API key not found.")
    return ApiKeyEnvelope(api_key=key_json(row))
