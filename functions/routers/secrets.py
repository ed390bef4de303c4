"""User secrets (provider keys): stored sealed, listed by name, never readable back."""

from __future__ import annotations

import re

from fastapi import APIRouter

from functions import keys_store
from functions.agents_store import iso
from functions.deps import UserDb
from functions.errors import BadRequest, NotFound, Unavailable
from functions.models import Ok, SecretEnvelope, SecretInfo, SecretList, SecretPut
from shared.secretbox import seal

router = APIRouter(prefix="/api/secrets", tags=["secrets"])

_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise BadRequest("Secret names are UPPER_SNAKE_CASE, up to 64 characters.")
    return name


@router.get("", response_model=SecretList)
async def list_secrets(ctx: UserDb) -> SecretList:
    rows = await keys_store.list_secret_names(ctx.conn)
    return SecretList(
        secrets=[
            SecretInfo(
                name=r["name"],
                created_at=iso(r["created_at"]) or "",
                updated_at=iso(r["updated_at"]) or "",
            )
            for r in rows
        ]
    )


@router.put("/{name}", response_model=SecretEnvelope)
async def put_secret(name: str, body: SecretPut, ctx: UserDb) -> SecretEnvelope:
    _check_name(name)
    key = ctx.settings.secrets_key_bytes
    if key is None:
        raise Unavailable("Secret storage is off: the operator has not set OPENDOT_SECRETS_KEY.")
    sealed = seal(key, body.value, f"{ctx.user_id}:{name}")
    row = await keys_store.put_secret(ctx.conn, ctx.user_id, name, sealed)
    return SecretEnvelope(
        secret=SecretInfo(
            name=row["name"],
            created_at=iso(row["created_at"]) or "",
            updated_at=iso(row["updated_at"]) or "",
        )
    )


@router.delete("/{name}", response_model=Ok)
async def delete_secret(name: str, ctx: UserDb) -> Ok:
    _check_name(name)
    if not await keys_store.delete_secret(ctx.conn, name):
        raise NotFound("Secret not found.")
    return Ok()
