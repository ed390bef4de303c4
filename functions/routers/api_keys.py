"""SDK keys (`od_sk_`): the token is shown once; only a prefix and its hash are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import APIRouter

from functions import keys_store
from functions.agents_store import iso, parse_uuid
from functions.deps import UserDb
from functions.errors import NotFound
from functions.models import ApiKey, ApiKeyCreate, ApiKeyEnvelope, ApiKeyList
from shared.tokens import display_prefix, new_api_key, token_hash

router = APIRouter(prefix="/api/api-keys", tags=["api keys"])


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
    return [key_json(r).model_dump(by_alias=True) for r in await keys_store.list_keys(conn)]


@router.get("", response_model=ApiKeyList)
async def get_keys(ctx: UserDb) -> ApiKeyList:
    return ApiKeyList(api_keys=[key_json(r) for r in await keys_store.list_keys(ctx.conn)])


@router.post("", status_code=201, response_model=ApiKeyEnvelope)
async def create_key(body: ApiKeyCreate, ctx: UserDb) -> ApiKeyEnvelope:
    token = new_api_key()
    expires = (
        datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    )
    row = await keys_store.create_key(
        ctx.conn, ctx.user_id, body.name.strip(), display_prefix(token), token_hash(token), expires
    )
    return ApiKeyEnvelope(api_key=key_json(row, token))


@router.post("/{key_id}/revoke", response_model=ApiKeyEnvelope)
async def revoke_key(key_id: str, ctx: UserDb) -> ApiKeyEnvelope:
    parsed = parse_uuid(key_id)
    row = await keys_store.revoke_key(ctx.conn, parsed) if parsed is not None else None
    if row is None:
        raise NotFound("API key not found.")
    return ApiKeyEnvelope(api_key=key_json(row))
