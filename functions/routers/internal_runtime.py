"""Internal runtime endpoints: voice-token consumption and session/turn/event records.

Bodies and answers are `shared.internal_api` models (the runtime uses the same).
"""

from __future__ import annotations

from fastapi import APIRouter

from functions import agents_store, devices_store, keys_store, runtime_store
from functions.deps import InternalDb
from functions.errors import BadRequest, NotFound, Unauthorized
from shared.internal_api import (
    Ok,
    Records,
    RecordsResult,
    SessionClose,
    SessionOpen,
    VoiceGrant,
    VoiceVerifyRequest,
)
from shared.tokens import token_hash

router = APIRouter(prefix="/api/internal/runtime", tags=["internal"])

_INVALID_TOKEN = "Voice session token is invalid, expired, or already used."  # noqa: S105


@router.post("/voice-sessions/verify", response_model=VoiceGrant)
async def verify_voice(body: VoiceVerifyRequest, conn: InternalDb) -> VoiceGrant:
    row = await runtime_store.consume_token(conn, token_hash(body.token.strip()), body.kind)
    if row is None:
        raise Unauthorized(_INVALID_TOKEN)
    agent = await agents_store.get_agent(conn, row["agent_id"])
    if agent is None:
        raise Unauthorized(_INVALID_TOKEN)
    return VoiceGrant(
        user_id=str(row["user_id"]),
        agent=agent,
        timezone=await devices_store.timezone(conn, row["user_id"]),
        secrets=await keys_store.sealed_secrets(conn, row["user_id"]),
    )


@router.post("/sessions/open", status_code=201, response_model=Ok)
async def open_session(body: SessionOpen, conn: InternalDb) -> Ok:
    if body.kind == "browser" and body.device_id is not None:
        raise BadRequest("A browser session has no device.")
    if not await runtime_store.user_exists(conn, body.user_id):
        raise NotFound("User not found.")
    await runtime_store.open_session(conn, body)
    return Ok()


@router.post("/sessions/close", response_model=Ok)
async def close_session(body: SessionClose, conn: InternalDb) -> Ok:
    if not await runtime_store.close_session(conn, body):
        raise NotFound("Voice session not found.")
    return Ok()


@router.post("/records", response_model=RecordsResult)
async def records(body: Records, conn: InternalDb) -> RecordsResult:
    """Batched, idempotent (upsert by id) so the runtime may retry safely."""
    session_ids = {t.session_id for t in body.turns} | {e.session_id for e in body.events}
    if session_ids:
        missing = await runtime_store.unknown_sessions(conn, session_ids)
        if missing:
            raise NotFound(f"Unknown voice session {sorted(map(str, missing))[0]}.")
    if body.turns:
        await runtime_store.write_turns(conn, body.turns)
    if body.events:
        await runtime_store.write_events(conn, body.events)
    return RecordsResult(turns=len(body.turns), events=len(body.events))
