"""The console's settings page: display name and email on app_users, the rest in preferences."""

from __future__ import annotations

import uuid

import asyncpg
from fastapi import APIRouter

from functions.deps import UserDb
from functions.models import SettingsEnvelope, SettingsUpdate, UserSettings

router = APIRouter(prefix="/api", tags=["settings"])

_SELECT = (
    "select u.display_name, u.email, coalesce(p.workspace_name, 'OpenDot Lab') as workspace_name,"
    " coalesce(p.timezone, 'UTC') as timezone, coalesce(p.compact_mode, false) as compact_mode"
    " from public.app_users u left join public.user_preferences p on p.user_id = u.id"
    " where u.id = $1"
)


async def read_settings(conn: asyncpg.Connection, user_id: str) -> UserSettings:
    row = await conn.fetchrow(_SELECT, uuid.UUID(user_id))
    if row is None:
        return UserSettings(
            display_name="",
            email="",
            workspace_name="OpenDot Lab",
            timezone="UTC",
            compact_mode=False,
        )
    return UserSettings(**dict(row))


@router.get("/settings", response_model=SettingsEnvelope)
async def get_settings(ctx: UserDb) -> SettingsEnvelope:
    return SettingsEnvelope(settings=await read_settings(ctx.conn, ctx.user_id))


@router.put("/settings", response_model=SettingsEnvelope)
async def put_settings(body: SettingsUpdate, ctx: UserDb) -> SettingsEnvelope:
    uid = uuid.UUID(ctx.user_id)
    if body.display_name is not None or body.email is not None:
        await ctx.conn.execute(
            "update public.app_users set display_name = coalesce($2, display_name),"
            " email = coalesce($3, email), updated_at = now() where id = $1",
            uid,
            body.display_name.strip() if body.display_name else None,
            body.email.strip() if body.email is not None else None,
        )
    prefs = (body.workspace_name, body.timezone, body.compact_mode)
    if any(v is not None for v in prefs):
        await ctx.conn.execute(
            "insert into public.user_preferences (user_id, workspace_name, timezone, compact_mode)"
            " values ($1, coalesce($2, 'OpenDot Lab'), coalesce($3, 'UTC'), coalesce($4, false))"
            " on conflict (user_id) do update set"
            " workspace_name = coalesce($2, user_preferences.workspace_name),"
            " timezone = coalesce($3, user_preferences.timezone),"
            " compact_mode = coalesce($4, user_preferences.compact_mode), updated_at = now()",
            uid,
            body.workspace_name,
            body.timezone,
            body.compact_mode,
        )
    return SettingsEnvelope(settings=await read_settings(ctx.conn, ctx.user_id))
