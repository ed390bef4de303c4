"""Reading the voice history: sessions (keyset-paged, newest first), one session's
turns with their stage timings and events, and per-stage latency percentiles.

Every query runs as the request's `authenticated` role, so RLS limits it to
the caller's sessions; the explicit `user_id` filter repeats the policy so the
planner can use the `(…, started_at desc, id desc)` indexes the voice
migration defines for each filter (a device, an agent, or all of a user's).
The WHERE clause is chosen in Python, never `($1 is null or col = $1)`, which
would hide the index from a prepared statement's generic plan.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from functions.agents_store import iso

MAX_PAGE = 100
LATENCY_WINDOW = 100
# The stored marks of a turn, in the order they happen (TurnMarks in the runtime).
MARKS = ("speech_end", "stt_final", "llm_first_token", "first_chunk", "first_audio", "ended")
# Each mark as a span of the console's timeline vocabulary (docs/protocols.md §4).
_MARK_SPANS = {
    "stt_final": ("stt-final", "stt_final", "STT final"),
    "llm_first_token": ("llm-first-token", "llm_first_delta", "First token"),
    "first_chunk": ("tts-request", "tts_request", "First sentence to speech"),
    "first_audio": ("first-audio", "first_audio", "First audio"),
    "ended": ("turn-end", "turn_end", "Turn end"),
}
_POINTS = frozenset({"llm_first_token", "first_audio"})
_CURSOR = re.compile(r"^(\d{1,17})_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")

_SESSION_COLUMNS = """
s.id, s.kind, s.agent_id, a.name as agent_name, s.device_id, d.display_name as device_name,
s.status, s.close_reason, s.started_at, s.ended_at,
(select count(*) from public.voice_turns t where t.session_id = s.id) as turn_count
"""
_SESSION_FROM = """
from public.voice_sessions s
left join public.agents a on a.id = s.agent_id
left join public.devices d on d.id = s.device_id
"""


class CursorError(ValueError):
    pass


def encode_cursor(started_at: datetime, session_id: uuid.UUID) -> str:
    micros = int(started_at.timestamp() * 1_000_000)
    return f"{micros}_{session_id}"


def decode_cursor(text: str) -> tuple[datetime, uuid.UUID]:
    match = _CURSOR.match(text.strip().lower())
    if not match:
        raise CursorError("before must be the `next` cursor of a previous page.")
    when = datetime.fromtimestamp(int(match[1]) / 1_000_000, UTC)
    return when, uuid.UUID(match[2])


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 1)


def session_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "agentId": str(row["agent_id"]) if row["agent_id"] else None,
        "agentName": row["agent_name"],
        "deviceId": str(row["device_id"]) if row["device_id"] else None,
        "deviceName": row["device_name"],
        "status": row["status"],
        "closeReason": row["close_reason"],
        "startedAt": iso(row["started_at"]),
        "endedAt": iso(row["ended_at"]),
        "durationMs": _ms(row["started_at"], row["ended_at"]),
        "turnCount": int(row["turn_count"]),
    }


def _filter(
    user_id: str, device_id: uuid.UUID | None, agent_id: uuid.UUID | None
) -> tuple[str, list[Any]]:
    """The WHERE clause for one of the three indexed filters, and its arguments."""
    clauses, args = ["s.user_id = $1"], [uuid.UUID(user_id)]
    if device_id is not None:
        args.append(device_id)
        clauses.append(f"s.device_id = ${len(args)}")
    if agent_id is not None:
        args.append(agent_id)
        clauses.append(f"s.agent_id = ${len(args)}")
    return " and ".join(clauses), args


async def list_sessions(
    conn: asyncpg.Connection,
    user_id: str,
    *,
    device_id: uuid.UUID | None,
    agent_id: uuid.UUID | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    where, args = _filter(user_id, device_id, agent_id)
    if before is not None:
        args += [before[0], before[1]]
        where += f" and (s.started_at, s.id) < (${len(args) - 1}, ${len(args)})"
    args.append(limit + 1)
    rows = await conn.fetch(
        f"select {_SESSION_COLUMNS} {_SESSION_FROM} where {where}"
        f" order by s.started_at desc, s.id desc limit ${len(args)}",
        *args,
    )
    page = rows[:limit]
    more = len(rows) > limit
    cursor = encode_cursor(page[-1]["started_at"], page[-1]["id"]) if more and page else None
    return [session_json(r) for r in page], cursor


def stages(row: asyncpg.Record | dict[str, Any]) -> list[dict[str, Any]]:
    """A turn's spans as the console draws them (docs/protocols.md §4, "Timeline").

    The runtime stores them with the turn; a turn recorded without them (by a
    client of the internal API that sends marks only) gets spans derived from its
    marks, in the same vocabulary."""
    stored = row["timeline"]
    if isinstance(stored, str):
        stored = json.loads(stored)
    if stored:
        return [dict(span) for span in stored if isinstance(span, dict)]
    origin = row["speech_end_at"]
    if origin is None:
        return []
    spans: list[dict[str, Any]] = []
    previous = 0.0
    for name in MARKS[1:]:
        end = _ms(origin, row[f"{name}_at"])
        if end is None:
            continue
        span_id, stage, label = _MARK_SPANS[name]
        point = name in _POINTS
        start = end if point else previous
        spans.append(
            {
                "spanId": span_id,
                "stage": stage,
                "label": label,
                "startMs": start,
                "endMs": end,
                "elapsedMs": end,
            }
        )
        previous = max(previous, end)
    return spans


def _event_json(row: asyncpg.Record) -> dict[str, Any]:
    payload = row["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload)
    return {
        "kind": row["kind"],
        "turnId": str(row["turn_id"]) if row["turn_id"] else None,
        "createdAt": iso(row["created_at"]),
        "payload": payload if isinstance(payload, dict) else {},
    }


async def session_detail(
    conn: asyncpg.Connection, user_id: str, session_id: uuid.UUID
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"select {_SESSION_COLUMNS} {_SESSION_FROM} where s.user_id = $1 and s.id = $2",
        uuid.UUID(user_id),
        session_id,
    )
    if row is None:
        return None
    turns = await conn.fetch(
        "select id, turn_index, transcript, reply_text, outcome, error, created_at,"
        " speech_end_at, stt_final_at, llm_first_token_at, first_chunk_at, first_audio_at,"
        " ended_at, timeline from public.voice_turns where session_id = $1"
        " order by turn_index desc",
        session_id,
    )
    events = await conn.fetch(
        "select kind, turn_id, payload::text as payload, created_at from public.voice_events"
        " where session_id = $1 order by created_at, id limit 1000",
        session_id,
    )
    by_turn: dict[str, list[dict[str, Any]]] = {}
    loose: list[dict[str, Any]] = []
    for event in events:
        item = _event_json(event)
        (by_turn.setdefault(item["turnId"], []) if item["turnId"] else loose).append(item)
    return {
        "session": session_json(row),
        "turns": [
            {
                "id": str(t["id"]),
                "turnIndex": t["turn_index"],
                "transcript": t["transcript"],
                "replyText": t["reply_text"],
                "outcome": t["outcome"],
                "error": t["error"],
                "startedAt": iso(t["speech_end_at"] or t["created_at"]),
                "endedAt": iso(t["ended_at"]),
                "durationMs": _ms(t["speech_end_at"] or t["created_at"], t["ended_at"]),
                "stages": stages(t),
                "events": by_turn.get(str(t["id"]), []),
            }
            for t in turns
        ],
        "events": loose,
    }


async def latency(
    conn: asyncpg.Connection,
    user_id: str,
    *,
    device_id: uuid.UUID | None,
    agent_id: uuid.UUID | None,
) -> dict[str, Any]:
    """p50/p95 of each mark, in ms after the speech ended, over the last 100 measured turns."""
    where, args = _filter(user_id, device_id, agent_id)
    args.append(LATENCY_WINDOW)
    measures = ", ".join(
        f"extract(epoch from (t.{m}_at - t.speech_end_at)) * 1000 as {m}" for m in MARKS[1:]
    )
    aggregates = ", ".join(
        f"percentile_cont(0.5) within group (order by {m}) as {m}_p50,"
        f" percentile_cont(0.95) within group (order by {m}) as {m}_p95,"
        f" count({m}) as {m}_n"
        for m in MARKS[1:]
    )
    # Interpolated: the fixed mark names and `_filter`'s placeholders; values are bound.
    row = await conn.fetchrow(
        f"select count(*) as turns, {aggregates} from ("  # noqa: S608
        f" select {measures} from public.voice_sessions s"
        " join public.voice_turns t on t.session_id = s.id"
        f" where {where} and t.speech_end_at is not null"
        f" order by s.started_at desc, t.turn_index desc limit ${len(args)}) recent",
        *args,
    )
    result = []
    for m in MARKS[1:]:
        if row is not None and row[f"{m}_n"]:
            _, stage, label = _MARK_SPANS[m]
            result.append(
                {
                    # The timeline's vocabulary, as the turn detail's spans name them.
                    "stage": stage,
                    "label": label,
                    "p50Ms": round(float(row[f"{m}_p50"]), 1),
                    "p95Ms": round(float(row[f"{m}_p95"]), 1),
                    "count": int(row[f"{m}_n"]),
                }
            )
    return {"turns": int(row["turns"]) if row else 0, "stages": result}
