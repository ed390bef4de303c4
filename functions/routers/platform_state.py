"""Everything the console shows on load, in one request (and one statement)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from functions import state_store
from functions.deps import UserDb, services
from functions.models import PlatformState

router = APIRouter(prefix="/api", tags=["platform state"])


@router.get("/platform-state", response_model=PlatformState)
async def platform_state(ctx: UserDb, request: Request) -> Response:
    # The body is already PlatformState's JSON (see state_store): returning it
    # as a Response skips re-validating and re-serialising every agent's
    # pipeline; `response_model` still documents the shape.
    body = await state_store.platform_state(ctx.conn, ctx.user_id, services(request).agent_cache)
    return Response(content=body, media_type="application/json")
