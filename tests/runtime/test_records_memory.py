"""Record buffering (drop policy, retry, ordering) and bounded memories."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.api_client import ApiRefused, ApiUnavailable
from runtime.metrics import Metrics
from runtime.records import RecordSink
from runtime.session.memory import ConversationMemory, PendingTurn, PendingTurns


class Api:
    def __init__(self) -> None:
        self.down = False
        self.refuse = False
        self.calls: list[tuple[str, Any]] = []

    async def _call(self, name: str, body: Any) -> None:
        if self.down:
            raise ApiUnavailable("down")
        if self.refuse:
            raise ApiRefused(409, "no")
        self.calls.append((name, body))

    async def open_session(self, body: Mapping[str, Any]) -> None:
        await self._call("open", body)

    async def close_session(self, body: Mapping[str, Any]) -> None:
        await self._call("close", body)

    async def post_records(self, turns: list[Any], events: list[Any]) -> None:
        await self._call("records", (list(turns), list(events)))


def turn(i: int) -> dict[str, Any]:
    return {"id": f"t{i}", "sessionId": "s"}


def event(i: int) -> dict[str, Any]:
    return {"id": f"e{i}", "sessionId": "s"}


async def test_oldest_events_are_dropped_before_any_turn() -> None:
    api, metrics = Api(), Metrics()
    persisted: list[str] = []
    sink = RecordSink(api, metrics, max_buffered=4, on_turns_persisted=persisted.extend)
    sink.open_session({"sessionId": "s"})
    sink.add_turn(turn(1))
    for i in range(3):
        sink.add_event(event(i))
    for i in (2, 3, 4):
        sink.add_turn(turn(i))  # full: the oldest event goes each time
    sink.add_turn(turn(5))  # no events left: the oldest turn goes
    assert metrics.records_dropped.get(kind="event") == 3
    assert metrics.records_dropped.get(kind="turn") == 1
    api.down = True
    assert not await sink.flush_once()
    assert sink.pending == 5  # kept for the retry (4 records + the session open)
    api.down = False
    sink.close_session({"sessionId": "s"})
    assert await sink.flush_once()
    names = [name for name, _ in api.calls]
    assert names == ["open", "records", "close"]
    turns, events = api.calls[1][1]
    assert [t["id"] for t in turns] == ["t2", "t3", "t4", "t5"] and events == []
    assert persisted == ["t2", "t3", "t4", "t5"]
    assert sink.pending == 0


async def test_refused_batches_are_dropped_not_retried_forever() -> None:
    api, metrics = Api(), Metrics()
    sink = RecordSink(api, metrics)
    sink.add_turn(turn(1))
    api.refuse = True
    assert await sink.flush_once()
    assert sink.pending == 0
    assert metrics.api_errors.get(endpoint="records_refused") == 1


async def test_drain_gives_up_at_the_deadline() -> None:
    api, metrics = Api(), Metrics()
    sink = RecordSink(api, metrics)
    sink.add_event(event(1))
    api.down = True
    assert not await sink.drain(0.1)
    api.down = False
    assert await sink.drain(1.0)


def test_memory_is_bounded_by_turns_and_tokens() -> None:
    memory = ConversationMemory(max_turns=3, max_tokens=1000)
    for i in range(5):
        memory.add(f"q{i}", f"a{i}")
    assert memory.turns() == [("q2", "a2"), ("q3", "a3"), ("q4", "a4")]
    small = ConversationMemory(max_turns=10, max_tokens=10)
    small.add("x" * 20, "y" * 8)  # 7 tokens
    small.add("z" * 12, "w" * 4)  # 4 tokens: together over budget, the oldest goes
    assert small.turns() == [("z" * 12, "w" * 4)]
    assert [m.role for m in small.messages()] == ["user", "assistant"]
    small.clear()
    assert len(small) == 0
    assert len(ConversationMemory(max_turns=0)) == 0


def test_memory_from_verify_messages_and_pending_merge() -> None:
    memory = ConversationMemory.from_messages(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "orphan"},
            {"role": "user", "content": "again"},
            {"role": "system", "content": 3},
        ]
    )
    assert memory.turns() == [("hi", "hello"), ("orphan", ""), ("again", "")]
    now = [0.0]
    pending = PendingTurns(per_device=2, max_devices=2, grace_s=5.0, clock=lambda: now[0])
    pending.add("d1", PendingTurn("t1", "hi", "hello"))
    pending.add("d1", PendingTurn("t2", "new", "answer"))
    pending.merge_into("d1", memory)  # t1 is already known; only t2 is added
    assert memory.turns()[-1] == ("new", "answer")
    assert memory.turns().count(("hi", "hello")) == 1
    pending.persisted(["t2", "unknown"])
    # Stored, but a verify already in flight may have missed it: kept for the grace,
    # merged after a read from before the confirmation, not after a later read.
    now[0] = 4.9
    assert [t.turn_id for t in pending.for_device("d1")] == ["t1", "t2"]
    earlier, later = ConversationMemory(), ConversationMemory()
    pending.merge_into("d1", earlier, read_at=-1.0)
    pending.merge_into("d1", later, read_at=1.0)
    assert earlier.turns() == [("hi", "hello"), ("new", "answer")]
    assert later.turns() == [("hi", "hello")]
    now[0] = 5.0
    assert [t.turn_id for t in pending.for_device("d1")] == ["t1"]
    pending.add("d2", PendingTurn("t3", "a", "b"))
    pending.add("d3", PendingTurn("t4", "c", "d"))  # evicts d1, the least recent
    assert pending.for_device("d1") == []
    pending.forget("d2")
    assert pending.for_device("d2") == []
    pending.persisted(["t4"])
    assert [t.turn_id for t in pending.for_device("d3")] == ["t4"]
    now[0] = 10.0
    assert pending.for_device("d3") == []


def test_a_turn_stored_during_a_verify_is_still_merged() -> None:
    """The race a reconnect right after a turn runs into: the verify reads the memory
    before the turn's record commits, and the record's confirmation arrives before
    the verify's answer."""
    now = [0.0]
    pending = PendingTurns(clock=lambda: now[0])
    pending.add("d1", PendingTurn("t1", "what is the weather", "Sunny."))
    read_at = now[0]
    from_verify = ConversationMemory.from_messages([])  # read before the commit
    now[0] = 0.1
    pending.persisted(["t1"])  # the record's answer comes before the verify's
    pending.merge_into("d1", from_verify, read_at=read_at)
    assert from_verify.turns() == [("what is the weather", "Sunny.")]


class StrictApi(Api):
    """Refuses records of a session it has not seen opened, as the real API does (404);
    while one batch is in flight, a new session opens and records a turn."""

    def __init__(self, sink_ref: list[RecordSink]) -> None:
        super().__init__()
        self.opened: set[str] = set()
        self.sink_ref = sink_ref

    async def open_session(self, body: Mapping[str, Any]) -> None:
        await super().open_session(body)
        self.opened.add(body["sessionId"])

    async def post_records(self, turns: list[Any], events: list[Any]) -> None:
        unknown = {r["sessionId"] for r in [*turns, *events]} - self.opened
        if unknown:
            raise ApiRefused(404, f"Unknown voice session {sorted(unknown)[0]}.")
        await super().post_records(turns, events)
        if len(self.calls) == 2:  # the first batch: a session starts meanwhile
            sink = self.sink_ref[0]
            sink.open_session({"sessionId": "late"})
            sink.add_turn({"id": "late-1", "sessionId": "late"})


async def test_a_session_opened_while_a_batch_is_in_flight_is_opened_before_its_turns() -> None:
    ref: list[RecordSink] = []
    api = StrictApi(ref)
    sink = RecordSink(api, Metrics())
    ref.append(sink)
    sink.open_session({"sessionId": "s"})
    sink.add_turn(turn(1))
    assert await sink.flush_once()
    assert sink.pending == 0
    assert [name for name, _ in api.calls] == ["open", "records", "open", "records"]
    assert api.calls[3][1][0] == [{"id": "late-1", "sessionId": "late"}]
