"""Voice-session tokens and the runtime's records (sessions, turns, events) in the database.

Tokens: issued by the signed-in user (`private.issue_runtime_token`, which
clamps the lifetime), consumed once by the runtime. Records: written by the
internal API as service role, idempotent on the ids the runtime generates, so
a retried batch is harmless.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from shared.internal_api import EventRecord, SessionClose, SessionOpen, TurnRecord


async def issue_token(
    conn: asyncpg.Connection, agent_id: uuid.UUID, hashed: str, kind: str, ttl_s: int
) -> datetime | None:
    """The token's expiry, or None when the agent is not the caller's."""
    expires: datetime | None = await conn.fetchval(
        "select private.issue_runtime_token($1, $2, $3, $4)", agent_id, hashed, kind, ttl_s
    )
    return expires


async def consume_token(conn: asyncpg.Connection, hashed: str, kind: str) -> asyncpg.Record | None:
    """user_id and agent_id of a live token, which is used up by this call."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "select user_id, agent_id from private.consume_runtime_token($1, $2)", hashed, kind
    )
    return row


async def user_exists(conn: asyncpg.Connection, user_id: uuid.UUID) -> bool:
    return await conn.fetchval("select 1 from public.app_users where id = $1", user_id) is not None


async def open_session(conn: asyncpg.Connection, body: SessionOpen) -> None:
    """Idempotent; an agent or device that is not the user's is recorded as none."""
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


async def close_session(conn: asyncpg.Connection, body: SessionClose) -> bool:
    found = await conn.fetchval(
        "update public.voice_sessions set status = 'closed',"
        " ended_at = coalesce(ended_at, $2, now()),"
        " close_reason = coalesce(close_reason, nullif($3, '')) where id = $1 returning 1",
        body.session_id,
        body.ended_at,
        body.reason,
    )
    return found is not None


async def unknown_sessions(conn: asyncpg.Connection, session_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    known = await conn.fetch(
        "select id from public.voice_sessions where id = any($1::uuid[])", list(session_ids)
    )
    return session_ids - {r["id"] for r in known}


async def write_turns(conn: asyncpg.Connection, turns: list[TurnRecord]) -> None:
    """Upsert by id; a turn never moves to another session."""
    await conn.executemany(
        "insert into public.voice_turns (id, session_id, turn_index, transcript, reply_text,"
        " outcome, error, speech_end_at, stt_final_at, llm_first_token_at, first_chunk_at,"
        " first_audio_at, ended_at, timeline) values ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " $10, $11, $12, $13, $14) on conflict (id) do update"
        " set transcript = excluded.transcript,"
        " reply_text = excluded.reply_text, outcome = excluded.outcome,"
        " error = excluded.error, speech_end_at = excluded.speech_end_at,"
        " stt_final_at = excluded.stt_final_at,"
        " llm_first_token_at = excluded.llm_first_token_at,"
        " first_chunk_at = excluded.first_chunk_at, first_audio_at = excluded.first_audio_at,"
        " ended_at = excluded.ended_at, timeline = excluded.timeline"
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
                [span.model_dump(by_alias=True, exclude_none=True) for span in t.timeline],
            )
            for t in turns
        ],
    )


async def write_events(conn: asyncpg.Connection, events: list[EventRecord]) -> None:
    """Insert once by id; a turn id from another session is dropped, not trusted."""
    await conn.executemany(
        "insert into public.voice_events (id, session_id, turn_id, kind, payload, created_at)"
        " values ($1, $2,"
        " (select id from public.voice_turns where id = $3 and session_id = $2),"
        " $4, $5, coalesce($6, now())) on conflict (id) do nothing",
        [(e.id, e.session_id, e.turn_id, e.kind, e.payload, e.created_at) for e in events],
    )
