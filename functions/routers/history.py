"""Voice history for the console: sessions of a Dot or an agent, their turns, latency."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from functions import history_store as store
from functions.agents_store import parse_uuid
from functions.deps import UserDb
from functions.errors import BadRequest, NotFound
from functions.models import LatencyStats, SessionDetail, SessionPage

router = APIRouter(prefix="/api/sessions", tags=["history"])

DeviceFilter = Annotated[str | None, Query(alias="deviceId", max_length=64)]
AgentFilter = Annotated[str | None, Query(alias="agentId", max_length=64)]


def _id(raw: str | None, name: str) -> uuid.UUID | None:
    if raw is None or raw == "":
        return None
    parsed = parse_uuid(raw)
    if parsed is None:
        raise BadRequest(f"{name} must be a UUID.")
    return parsed


@router.get("", response_model=SessionPage)
async def list_sessions(
    ctx: UserDb,
    device_id: DeviceFilter = None,
    agent_id: AgentFilter = None,
    before: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=store.MAX_PAGE)] = 20,
) -> SessionPage:
    """Newest first; pass the answer's `next` as `before` for the older page."""
    try:
        cursor = store.decode_cursor(before) if before else None
    except store.CursorError as exc:
        raise BadRequest(str(exc)) from exc
    sessions, next_cursor = await store.list_sessions(
        ctx.conn,
        ctx.user_id,
        device_id=_id(device_id, "deviceId"),
        agent_id=_id(agent_id, "agentId"),
        before=cursor,
        limit=limit,
    )
    return SessionPage.model_validate({"sessions": sessions, "next": next_cursor})


@router.get("/latency", response_model=LatencyStats)
async def latency(
    ctx: UserDb, device_id: DeviceFilter = None, agent_id: AgentFilter = None
) -> LatencyStats:
    """p50 / p95 per stage over the last 100 turns (ms after the speech ended)."""
    stats = await store.latency(
        ctx.conn,
        ctx.user_id,
        device_id=_id(device_id, "deviceId"),
        agent_id=_id(agent_id, "agentId"),
    )
    return LatencyStats.model_validate(stats)


@router.get("/{session_id}", response_model=SessionDetail)
async def session_detail(session_id: str, ctx: UserDb) -> SessionDetail:
    """One session with its turns (newest first), stage timings and events."""
    parsed = parse_uuid(session_id)
    found = await store.session_detail(ctx.conn, ctx.user_id, parsed) if parsed else None
    if found is None:
        raise NotFound("Session not found.")
    return SessionDetail.model_validate(found)
