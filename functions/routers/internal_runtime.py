"""Internal runtime endpoints: voice-token consumption and session/turn/event records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from functions import agents_store
from functions.deps import InternalDb
from functions.errors import BadRequest, NotFound, Unauthorized
from functions.models import CamelModel, Ok, RequestBody
from functions.routers.internal_devices import _secrets
from shared.tokens import token_hash

router = APIRouter(prefix="/api/internal/runtime", tags=["internal"])


class VoiceVerifyBody(RequestBody):
    token: str = Field(min_length=1, max_length=512)
    ip_address: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    kind: Literal["voice", "realtime"] = "voice"


class SessionOpen(RequestBody):
    session_id: uuid.UUID
    kind: Literal["device", "browser"]
    user_id: uuid.UUID
    agent_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None
    protocol_version: int | None = Field(default=None, ge=1, le=9)
    runtime_instance: str = Field(default="", max_length=200)
    started_at: datetime | None = None


class SessionClose(RequestBody):
    session_id: uuid.UUID
    ended_at: datetime | None = None
    reason: str = Field(default="", max_length=500)


class Marks(CamelModel):
    speech_end_at: datetime | None = None
    stt_final_at: datetime | None = None
    llm_first_token_at: datetime | None = None
    first_chunk_at: datetime | None = None
    first_audio_at: datetime | None = None
    ended_at: datetime | None = None


class TurnRecord(CamelModel):
    id: uuid.UUID
    session_id: uuid.UUID
    turn_index: int = Field(ge=0, le=1_000_000)
    transcript: str = Field(default="", max_length=20_000)
    reply_text: str = Field(default="", max_length=50_000)
    outcome: Literal["completed", "ignored", "aborted", "interrupted", "failed"]
    error: str | None = Field(default=None, max_length=4000)
    marks: Marks = Field(default_factory=Marks)


class EventRecord(CamelModel):
    id: uuid.UUID
    session_id: uuid.UUID
    turn_id: uuid.UUID | None = None
    kind: str = Field(pattern=r"^[a-z][a-z0-9_.\-]{0,63}$")
    payload: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None


class Records(RequestBody):
    turns: list[TurnRecord] = Field(default_factory=list, max_length=500)
    events: list[EventRecord] = Field(default_factory=list, max_length=2000)


class RecordsResult(CamelModel):
    ok: bool = True
    turns: int
    events: int


@router.post("/voice-sessions/verify")
async def verify_voice(body: VoiceVerifyBody, conn: InternalDb) -> dict[str, Any]:
    row = await conn.fetchrow(
        "select user_id, agent_id from private.consume_runtime_token($1, $2)",
        token_hash(body.token.strip()),
        body.kind,
    )
    if row is None:
        raise Unauthorized("Voice session token is invalid, expired, or already used.")
    agent = await agents_store.get_agent(conn, row["agent_id"])
    if agent is None:
        raise Unauthorized("Voice session token is invalid, expired, or already used.")
    return {
        "userId": str(row["user_id"]),
        "agent": agent,
        "secrets": await _secrets(conn, row["user_id"]),
    }


@router.post("/sessions/open", status_code=201, response_model=Ok)
async def open_session(body: SessionOpen, conn: InternalDb) -> Ok:
    if body.kind == "browser" and body.device_id is not None:
        raise BadRequest("A browser session has no device.")
    known_user = await conn.fetchval("select 1 from public.app_users where id = $1", body.user_id)
    if known_user is None:
        raise NotFound("User not found.")
    await conn.execute(
        "insert into public.voice_sessions (id, user_id, kind, agent_id, device_id,"
        " protocol_version, runtime_instance, started_at)"
        " select $1, $2, $3,"
        " (select id from public.agents where id = $4 and user_id = $2),"
        " (select id from public.devices where id = $5 and user_id = $2),"
        " $6, $7, coalesce($8, now())"
        " on conflict (id) do nothing",
        body.session_id,
        body.user_id,
        body.kind,
        body.agent_id,
        body.device_id,
        body.protocol_version,
        body.runtime_instance,
        body.started_at,
    )
    return Ok()


@router.post("/sessions/close", response_model=Ok)
async def close_session(body: SessionClose, conn: InternalDb) -> Ok:
    found = await conn.fetchval(
        "update public.voice_sessions set status = 'closed',"
        " ended_at = coalesce(ended_at, $2, now()),"
        " close_reason = coalesce(close_reason, nullif($3, '')) where id = $1 returning 1",
        body.session_id,
        body.ended_at,
        body.reason,
    )
    if found is None:
        raise NotFound("Voice session not found.")
    return Ok()


@router.post("/records", response_model=RecordsResult)
async def records(body: Records, conn: InternalDb) -> RecordsResult:
    """Batched, idempotent (upsert by id) so the runtime may retry safely."""
    session_ids = {t.session_id for t in body.turns} | {e.session_id for e in body.events}
    if session_ids:
        known = await conn.fetch(
            "select id from public.voice_sessions where id = any($1::uuid[])", list(session_ids)
        )
        missing = session_ids - {r["id"] for r in known}
        if missing:
            raise NotFound(f"Unknown voice session {sorted(map(str, missing))[0]}.")
    if body.turns:
        await conn.executemany(
            "insert into public.voice_turns (id, session_id, turn_index, transcript, reply_text,"
            " outcome, error, speech_end_at, stt_final_at, llm_first_token_at, first_chunk_at,"
            " first_audio_at, ended_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
            " $12, $13) on conflict (id) do update set transcript = excluded.transcript,"
            " reply_text = excluded.reply_text, outcome = excluded.outcome,"
            " error = excluded.error, speech_end_at = excluded.speech_end_at,"
            " stt_final_at = excluded.stt_final_at,"
            " llm_first_token_at = excluded.llm_first_token_at,"
            " first_chunk_at = excluded.first_chunk_at, first_audio_at = excluded.first_audio_at,"
            " ended_at = excluded.ended_at"
            " where voice_turns.session_id = excluded.session_id",
            [
                (
                    t.id,
                    t.session_id,
                    t.turn_index,
                    t.transcript,
                    t.reply_text,
                    t.outcome,
                    t.error,
                    t.marks.speech_end_at,
                    t.marks.stt_final_at,
                    t.marks.llm_first_token_at,
                    t.marks.first_chunk_at,
                    t.marks.first_audio_at,
                    t.marks.ended_at,
                )
                for t in body.turns
            ],
        )
    if body.events:
        await conn.executemany(
            "insert into public.voice_events (id, session_id, turn_id, kind, payload, created_at)"
            " values ($1, $2,"
            " (select id from public.voice_turns where id = $3 and session_id = $2),"
            " $4, $5, coalesce($6, now())) on conflict (id) do nothing",
            [(e.id, e.session_id, e.turn_id, e.kind, e.payload, e.created_at) for e in body.events],
        )
    return RecordsResult(turns=len(body.turns), events=len(body.events))
