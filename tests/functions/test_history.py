"""GET /api/sessions, /api/sessions/{id}, /api/sessions/latency: the console's History.

Sessions, turns and events are written the way the runtime writes them (the
internal records API), then read back as the owner, a stranger and without a
bearer: RLS is what keeps a stranger out, the pages are keyset-paged newest
first, and a turn's marks come back as waterfall spans.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from functions.history_store import decode_cursor, encode_cursor
from tests.functions.conftest import AppFactory, auth, internal_headers, signup

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


async def _device(client: httpx.AsyncClient, user: dict[str, str], serial: str) -> str:
    answer = await client.post(
        "/api/dot-devices",
        json={"name": f"Dot {serial}", "serialNumber": serial},
        headers=auth(user),
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["device"]["id"])


async def _agent(client: httpx.AsyncClient, user: dict[str, str]) -> str:
    answer = await client.post("/api/agents", json={"name": "Helper"}, headers=auth(user))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["agent"]["id"])


async def _session(
    client: httpx.AsyncClient,
    user: dict[str, str],
    *,
    started: datetime,
    device_id: str | None = None,
    agent_id: str | None = None,
    turns: list[dict[str, Any]] | None = None,
    events: list[dict[str, Any]] | None = None,
) -> str:
    session_id = str(uuid.uuid4())
    opened = await client.post(
        "/api/internal/runtime/sessions/open",
        json={
            "sessionId": session_id,
            "kind": "device" if device_id else "browser",
            "userId": user["id"],
            "agentId": agent_id,
            "deviceId": device_id,
            "startedAt": started.isoformat(),
        },
        headers=internal_headers(),
    )
    assert opened.status_code == 201, opened.text
    body = {
        "turns": [{"sessionId": session_id, **t} for t in turns or []],
        "events": [{"sessionId": session_id, **e} for e in events or []],
    }
    recorded = await client.post(
        "/api/internal/runtime/records", json=body, headers=internal_headers()
    )
    assert recorded.status_code == 200, recorded.text
    closed = await client.post(
        "/api/internal/runtime/sessions/close",
        json={"sessionId": session_id, "endedAt": (started + timedelta(seconds=30)).isoformat()},
        headers=internal_headers(),
    )
    assert closed.status_code == 200, closed.text
    return session_id


def _turn(
    index: int, speech_end: datetime, transcript: str, *, stt_ms: int = 120
) -> dict[str, Any]:
    at = lambda ms: (speech_end + timedelta(milliseconds=ms)).isoformat()  # noqa: E731
    return {
        "id": str(uuid.uuid4()),
        "turnIndex": index,
        "transcript": transcript,
        "replyText": f"(echo) {transcript}",
        "outcome": "completed",
        "marks": {
            "speechEndAt": at(0),
            "sttFinalAt": at(stt_ms),
            "llmFirstTokenAt": at(stt_ms + 30),
            "firstChunkAt": at(stt_ms + 40),
            "firstAudioAt": at(stt_ms + 200),
            "endedAt": at(stt_ms + 1500),
        },
    }


def test_cursor_round_trip_and_refusal() -> None:
    sid = uuid.uuid4()
    when = T0 + timedelta(microseconds=123_456)
    assert decode_cursor(encode_cursor(when, sid)) == (when, sid)
    for bad in ("", "abc", "12_not-a-uuid", f"-5_{sid}", f"1_{sid}; drop table x"):
        with pytest.raises(ValueError):
            decode_cursor(bad)


async def test_pages_newest_first_per_device_and_agent(make_client: AppFactory) -> None:
    client = await make_client()
    owner = await signup(client)
    device = await _device(client, owner, "SN-HIST-1")
    other_device = await _device(client, owner, "SN-HIST-2")
    agent = await _agent(client, owner)
    ids = []
    for i in range(5):
        ids.append(
            await _session(
                client,
                owner,
                started=T0 + timedelta(minutes=i),
                device_id=device,
                agent_id=agent,
                turns=[_turn(0, T0 + timedelta(minutes=i, seconds=5), f"question {i}")],
            )
        )
    await _session(client, owner, started=T0 + timedelta(hours=1), device_id=other_device)
    browser = await _session(client, owner, started=T0 + timedelta(hours=2), agent_id=agent)

    first = await client.get(f"/api/sessions?deviceId={device}&limit=2", headers=auth(owner))
    assert first.status_code == 200, first.text
    page = first.json()
    assert [s["id"] for s in page["sessions"]] == [ids[4], ids[3]]
    assert page["sessions"][0]["turnCount"] == 1
    assert page["sessions"][0]["deviceName"] == "Dot SN-HIST-1"
    assert page["sessions"][0]["agentName"] == "Helper"
    assert page["sessions"][0]["durationMs"] == 30_000
    seen = [s["id"] for s in page["sessions"]]
    cursor = page["next"]
    while cursor:
        more = (
            await client.get(
                f"/api/sessions?deviceId={device}&limit=2&before={cursor}", headers=auth(owner)
            )
        ).json()
        seen += [s["id"] for s in more["sessions"]]
        cursor = more["next"]
    assert seen == ids[::-1]

    by_agent = (await client.get(f"/api/sessions?agentId={agent}", headers=auth(owner))).json()
    assert [s["id"] for s in by_agent["sessions"]] == [browser, *ids[::-1]]
    assert by_agent["sessions"][0]["kind"] == "browser" and by_agent["next"] is None
    everything = (await client.get("/api/sessions", headers=auth(owner))).json()
    assert len(everything["sessions"]) == 7


async def test_session_detail_has_turns_stages_and_events(make_client: AppFactory) -> None:
    client = await make_client()
    owner = await signup(client)
    device = await _device(client, owner, "SN-DETAIL")
    first, second = _turn(0, T0, "what time is it"), _turn(1, T0 + timedelta(seconds=20), "thanks")
    # The runtime stores each turn's timeline spans (docs/protocols.md §4, "Timeline").
    second["timeline"] = [
        {"spanId": "stt-final", "stage": "stt_final", "label": "STT final", "startMs": 0,
         "endMs": 95.5, "elapsedMs": 95.5},
        {"spanId": "tts-chunk-0", "stage": "tts_chunk", "label": "TTS chunk 0", "startMs": 130,
         "endMs": 180, "elapsedMs": 180, "bytes": 9600},
    ]  # fmt: skip
    session = await _session(
        client,
        owner,
        started=T0 - timedelta(seconds=2),
        device_id=device,
        turns=[first, second],
        events=[
            {
                "id": str(uuid.uuid4()),
                "turnId": first["id"],
                "kind": "provider_error",
                "payload": {"stage": "stt", "message": "deepgram timed out"},
            },
            {
                "id": str(uuid.uuid4()),
                "kind": "protocol_error",
                "payload": {"message": "bad frame"},
            },
        ],
    )
    answer = await client.get(f"/api/sessions/{session}", headers=auth(owner))
    assert answer.status_code == 200, answer.text
    detail = answer.json()
    assert detail["session"]["turnCount"] == 2
    newest, oldest = detail["turns"]
    assert (newest["transcript"], oldest["transcript"]) == ("thanks", "what time is it")
    assert oldest["durationMs"] == 1620
    assert [{k: v for k, v in s.items() if v is not None} for s in newest["stages"]] == (
        second["timeline"]
    )
    # A turn stored with marks only: spans derived from them, in the same vocabulary.
    assert [(s["stage"], s["startMs"], s["endMs"]) for s in oldest["stages"]] == [
        ("stt_final", 0, 120),
        ("llm_first_delta", 150, 150),
        ("tts_request", 150, 160),
        ("first_audio", 320, 320),
        ("turn_end", 320, 1620),
    ]
    assert all(s["elapsedMs"] == s["endMs"] and s["label"] for s in oldest["stages"])
    assert oldest["events"] == [
        {
            "kind": "provider_error",
            "turnId": first["id"],
            "createdAt": oldest["events"][0]["createdAt"],
            "payload": {"stage": "stt", "message": "deepgram timed out"},
        }
    ]
    assert newest["events"] == []
    assert [e["kind"] for e in detail["events"]] == ["protocol_error"]


async def test_latency_percentiles_over_the_last_hundred_turns(make_client: AppFactory) -> None:
    client = await make_client()
    owner = await signup(client)
    device = await _device(client, owner, "SN-LAT")
    # 110 turns; the 10 oldest are slow and must fall out of the window.
    for s in range(11):
        start = T0 + timedelta(minutes=s)
        stt = 5000 if s == 0 else 100
        turns = [_turn(i, start + timedelta(seconds=i), "hi", stt_ms=stt + i) for i in range(10)]
        await _session(client, owner, started=start, device_id=device, turns=turns)
    stats = (
        await client.get(f"/api/sessions/latency?deviceId={device}", headers=auth(owner))
    ).json()
    assert stats["turns"] == 100
    stt = next(s for s in stats["stages"] if s["stage"] == "stt_final")
    assert stt["count"] == 100 and stt["label"] == "STT final"
    # The same names the turn detail's spans use (the runtime's timeline vocabulary).
    names = {s["stage"] for s in stats["stages"]}
    assert names <= {"stt_final", "llm_first_delta", "tts_request", "first_audio", "turn_end"}
    assert stt["p50Ms"] == pytest.approx(104.5)
    assert stt["p95Ms"] == 109  # ten turns each of 100..109 ms: the top tenth is 109
    empty = (
        await client.get(f"/api/sessions/latency?agentId={uuid.uuid4()}", headers=auth(owner))
    ).json()
    assert empty == {"turns": 0, "stages": []}


async def test_strangers_and_anonymous_callers_see_nothing(make_client: AppFactory) -> None:
    client = await make_client()
    owner, stranger = await signup(client), await signup(client)
    device = await _device(client, owner, "SN-PRIVATE")
    session = await _session(
        client, owner, started=T0, device_id=device, turns=[_turn(0, T0, "secret plans")]
    )
    for path in (
        f"/api/sessions?deviceId={device}",
        "/api/sessions",
        f"/api/sessions/latency?deviceId={device}",
    ):
        answer = await client.get(path, headers=auth(stranger))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body.get("sessions", []) == [] and body.get("turns", 0) == 0, (path, body)
    hidden = await client.get(f"/api/sessions/{session}", headers=auth(stranger))
    assert hidden.status_code == 404 and hidden.json() == {"error": "Session not found."}
    for path in ("/api/sessions", f"/api/sessions/{session}", "/api/sessions/latency"):
        assert (await client.get(path)).status_code == 401


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        ("deviceId=nope", "deviceId must be a UUID."),
        ("agentId=1", "agentId must be a UUID."),
        ("before=yesterday", "before must be the `next` cursor of a previous page."),
        ("limit=0", "limit: Input should be greater than or equal to 1."),
        ("limit=101", "limit: Input should be less than or equal to 100."),
    ],
)
async def test_bad_queries_get_a_sentence(
    make_client: AppFactory, query: str, sentence: str
) -> None:
    client = await make_client()
    owner = await signup(client)
    answer = await client.get(f"/api/sessions?{query}", headers=auth(owner))
    assert answer.status_code == 400
    assert answer.json() == {"error": sentence}
    missing = await client.get("/api/sessions/not-a-uuid", headers=auth(owner))
    assert missing.status_code == 404
