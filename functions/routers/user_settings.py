"""The console's settings page: display name and email on app_users, the rest in preferences."""

from __future__ import annotations

from fastapi import APIRouter

from functions import accounts_store
from functions.deps import UserDb
from functions.models import SettingsEnvelope, SettingsUpdate

router = APIRouter(prefix="/api", tags=["settings"])


@router.get("/settings", response_model=SettingsEnvelope)
async def get_settings(ctx: UserDb) -> SettingsEnvelope:
    return SettingsEnvelope(settings=await accounts_store.read_settings(ctx.conn, ctx.user_id))


@router.put("/settings", response_model=SettingsEnvelope)
async def put_settings(body: SettingsUpdate, ctx: UserDb) -> SettingsEnvelope:
    if body.display_name is not None or body.email is not None:
        await accounts_store.update_profile(
            ctx.conn,
            ctx.user_id,
            body.display_name.strip() if body.display_name else None,
            body.email.strip() if body.email is not None else None,
        )
    if any(v is not None for v in (body.workspace_name, body.timezone, body.compact_mode)):
        await accounts_store.update_preferences(
            ctx.conn, ctx.user_id, body.workspace_name, body.timezone, body.compact_mode
        )
    return SettingsEnvelope(settings=await accounts_store.read_settings(ctx.conn, ctx.user_id))
