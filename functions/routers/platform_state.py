"""Everything the console shows on load, in one request."""

from __future__ import annotations

from fastapi import APIRouter

from functions import agents_store, devices_store
from functions.deps import UserDb
from functions.models import PlatformState
from functions.routers.api_keys import list_keys
from functions.routers.user_settings import read_settings

router = APIRouter(prefix="/api", tags=["platform state"])


@router.get("/platform-state", response_model=PlatformState)
async def platform_state(ctx: UserDb) -> PlatformState:
    return PlatformState.model_validate(
        {
            "agents": await agents_store.list_agents(ctx.conn),
            "devices": await devices_store.list_devices(ctx.conn),
            "userSettings": await read_settings(ctx.conn, ctx.user_id),
            "apiKeys": await list_keys(ctx.conn),
        }
    )
