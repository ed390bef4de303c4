"""Persistence of sessions, turns and events without ever blocking audio.

Sessions call the synchronous `open_session / add_turn / add_event / close_session`
methods, which only append to memory. One background task (`run`) posts them to
the internal API in batches: session opens first (records reference them), then
turns and events, then closes. When the API is down the task retries with
exponential backoff while the buffer is bounded: when it is full the oldest
*event* is dropped, and a turn only when no event is left; every drop is counted.
All endpoints are idempotent on the record ids, so a retry after a lost answer
is harmless.

The flusher serves every tenant, so no record may stop it. Records are cleaned
when they are added (`protocol.text`: no lone surrogate or NUL can reach the
encoder or PostgreSQL), and whatever else a record can still do — break the
internal API's contract, be refused by the API, fail to encode, hit a bug —
costs that record only: a batch that fails for any reason but an unreachable
API is split in halves until the records to blame stand alone, and those are
dropped (counted as `refused` or `poison`; logged by id, never by content).
An unexpected error in a pass is counted and the loop goes on. `status()` says
whether the flusher runs, retries, is stuck in one pass, or died; `/health` and
`/metrics` report it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from runtime.api_client import ApiError, ApiRefused
from runtime.metrics import Metrics
from runtime.protocol.text import TooDeep, clean_json

log = logging.getLogger("opendot.runtime.records")

BATCH_TURNS = 100
BATCH_EVENTS = 400
BACKOFF_MAX_S = 10.0
# Records wrap device-supplied payloads (nested at most protocol.text.MAX_DEPTH) in a
# few levels of their own.
RECORD_MAX_DEPTH = 48


def _record_id(record: Any) -> str:
    if isinstance(record, Mapping):
        return str(record.get("id") or record.get("sessionId") or "?")[:64]
    return "?"


class RecordsApi(Protocol):
    async def open_session(self, body: Mapping[str, Any]) -> None: ...
    async def close_session(self, body: Mapping[str, Any]) -> None: ...
    async def post_records(self, turns: list[Any], events: list[Any]) -> None: ...


class RecordSink:
    def __init__(
        self,
        api: RecordsApi,
        metrics: Metrics,
        *,
        max_buffered: int = 5000,
        flush_interval_s: float = 0.2,
        stuck_after_s: float = 30.0,
        on_turns_persisted: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._api = api
        self._metrics = metrics
        self._max = max_buffered
        self._interval = flush_interval_s
        self._stuck_after = stuck_after_s
        self._on_turns_persisted = on_turns_persisted
        self._opens: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._closes: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._turns: deque[dict[str, Any]] = deque()
        self._events: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._failures = 0
        # The flusher and `drain` (a device memory reset, shutdown) may overlap; one
        # pass at a time keeps each record in exactly one batch.
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._pass_started: float | None = None  # loop time of the pass in progress
        self._last_success: float | None = None

    # --- producers (synchronous, never block) ----------------------------------------

    @property
    def pending(self) -> int:
        return len(self._opens) + len(self._closes) + len(self._turns) + len(self._events)

    def open_session(self, body: dict[str, Any]) -> None:
        if (clean := self._clean(body)) is not None:
            self._opens[clean["sessionId"]] = clean
            self._bound_sessions(self._opens)
            self._wake.set()

    def close_session(self, body: dict[str, Any]) -> None:
        if (clean := self._clean(body)) is not None:
            self._closes[clean["sessionId"]] = clean
            self._bound_sessions(self._closes)
            self._wake.set()

    def add_turn(self, turn: dict[str, Any]) -> None:
        if (clean := self._clean(turn)) is not None:
            self._make_room()
            self._turns.append(clean)
            self._wake.set()

    def add_event(self, event: dict[str, Any]) -> None:
        if (clean := self._clean(event)) is not None:
            self._make_room()
            self._events.append(clean)

    def _clean(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The record with every string storable; None (counted) when it cannot be kept."""
        try:
            clean: dict[str, Any] = clean_json(record, max_depth=RECORD_MAX_DEPTH)
        except TooDeep:
            self._poisoned("add", TooDeep(), [record])
            return None
        return clean

    def _bound_sessions(self, table: OrderedDict[str, dict[str, Any]]) -> None:
        while len(table) > self._max:
            table.popitem(last=False)
            self._metrics.records_dropped.inc(kind="session")

    def _make_room(self) -> None:
        while len(self._turns) + len(self._events) >= self._max:
            if self._events:
                self._events.popleft()
                self._metrics.records_dropped.inc(kind="event")
            else:
                self._turns.popleft()
                self._metrics.records_dropped.inc(kind="turn")

    # --- the flusher -----------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Start the flusher (the lifespan does, once)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="records")
        return self._task

    async def run(self) -> None:
        """Flush forever; cancel to stop (call `drain` first to push what is left)."""
        while True:
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
                self._wake.clear()
                if not self.pending:
                    continue
                # Batch what arrives within one interval instead of one POST per record.
                await asyncio.sleep(min(self._interval, 0.05))
                ok = await self.flush_once()
            except Exception as exc:  # a bug must not stop record-keeping for everyone
                self._metrics.records_flusher_errors.inc()
                log.error("record flusher pass failed (%s); going on", type(exc).__name__)
                ok = False
            if ok:
                self._failures = 0
            else:
                self._failures += 1
                await asyncio.sleep(min(0.25 * 2 ** (self._failures - 1), BACKOFF_MAX_S))

    def status(self) -> dict[str, Any]:
        """The flusher's state for /health: running | retrying | stuck | dead | stopped.

        `stuck` is one pass that has been waiting longer than `stuck_after_s`
        (every API call has its own timeout, so something else holds it);
        `retrying` is an API that does not answer, which the flusher rides out.
        """
        loop = asyncio.get_running_loop()
        state = "running"
        if self._task is None:
            state = "stopped"
        elif self._task.done():
            state = "dead"
        elif self._pass_started is not None and (
            loop.time() - self._pass_started > self._stuck_after
        ):
            state = "stuck"
        elif self._failures:
            state = "retrying"
        report: dict[str, Any] = {"state": state, "buffered": self.pending}
        if self._last_success is not None:
            report["lastFlushAgoS"] = round(loop.time() - self._last_success, 1)
        return report

    @property
    def healthy(self) -> bool:
        return self.status()["state"] in ("running", "retrying")

    async def drain(self, deadline_s: float) -> bool:
        """Try to push everything within `deadline_s`; True when the buffer is empty."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        delay = 0.05
        while self.pending and loop.time() < end:
            try:
                async with asyncio.timeout(max(0.0, end - loop.time())):
                    flushed = await self.flush_once()
            except TimeoutError:
                break
            if not flushed:
                await asyncio.sleep(min(delay, max(0.0, end - loop.time())))
                delay = min(delay * 2, 1.0)
        return not self.pending

    async def flush_once(self) -> bool:
        """One pass over the buffer. False when the API could not be reached."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            self._pass_started = loop.time()
            try:
                ok = await self._flush_pass()
            finally:
                self._pass_started = None
            if ok:
                self._last_success = loop.time()
            return ok

    async def _flush_pass(self) -> bool:
        try:
            await self._send_opens()
            while self._turns or self._events:
                turns = list(self._turns)[:BATCH_TURNS]
                events = list(self._events)[:BATCH_EVENTS]
                await self._send_batch(turns, events)
                # Remove exactly what was sent (or dropped): during the await new records
                # may have arrived and old ones may have been dropped to make room.
                gone = {id(r) for r in turns} | {id(r) for r in events}
                self._turns = deque(t for t in self._turns if id(t) not in gone)
                self._events = deque(e for e in self._events if id(e) not in gone)
                # A session may have started while that batch was in flight: the API
                # refuses records of a session it has not seen opened.
                await self._send_opens()
            for session_id, body in list(self._closes.items()):
                if session_id in self._opens:
                    continue
                await self._send_one(self._api.close_session, body)
                self._closes.pop(session_id, None)
        except ApiError as exc:
            self._metrics.api_errors.inc(endpoint="records")
            log.warning("records not persisted yet (%s); %d buffered", exc, self.pending)
            return False
        return True

    async def _send_opens(self) -> None:
        """Open every session waiting to be opened, those that start meanwhile included."""
        while self._opens:
            session_id, body = next(iter(self._opens.items()))
            await self._send_one(self._api.open_session, body)
            self._opens.pop(session_id, None)

    async def _send_one(
        self, post: Callable[[dict[str, Any]], Awaitable[None]], body: dict[str, Any]
    ) -> None:
        """Send a session open or close; one that is refused or breaks is dropped."""
        try:
            await post(body)
        except ApiRefused as exc:
            self._refused(exc, [body])
        except ApiError:
            raise
        except Exception as exc:
            self._poisoned("send", exc, [body])

    async def _send_batch(self, turns: list[Any], events: list[Any]) -> None:
        """Send a batch; every record in it is then sent or dropped.

        An unreachable API (`ApiUnavailable`) propagates: the whole batch is retried
        later (the endpoint is idempotent, so halves already sent do no harm). A batch
        the API refuses, or that fails for any other reason, is split in halves until
        the records to blame stand alone; only those are dropped, so one bad record
        costs itself and not the other sessions' records batched with it.
        """
        try:
            await self._api.post_records(turns, events)
        except ApiRefused as exc:
            failure: Exception = exc
        except ApiError:
            raise
        except Exception as exc:
            failure = exc
        else:
            self._metrics.records_sent.inc(len(turns), kind="turn")
            self._metrics.records_sent.inc(len(events), kind="event")
            if self._on_turns_persisted is not None and turns:
                try:
                    self._on_turns_persisted([str(t.get("id")) for t in turns])
                except Exception as exc:
                    log.error("turns-persisted hook failed (%s)", type(exc).__name__)
            return
        if len(turns) + len(events) == 1:
            if isinstance(failure, ApiRefused):
                self._refused(failure, [*turns, *events])
            else:
                self._poisoned("send", failure, [*turns, *events])
            return
        records = [*turns, *events]
        turn_ids = {id(t) for t in turns}
        middle = len(records) // 2
        for half in (records[:middle], records[middle:]):
            await self._send_batch(
                [r for r in half if id(r) in turn_ids], [r for r in half if id(r) not in turn_ids]
            )

    def _refused(self, exc: ApiRefused, records: list[Any]) -> None:
        # A 4xx will not get better with retries; drop the record and say so loudly, so
        # a contract mismatch cannot wedge the buffer.
        log.error(
            "internal API refused record %s (%s)",
            ", ".join(_record_id(r) for r in records),
            exc.status,
        )
        self._metrics.api_errors.inc(endpoint="records_refused")
        self._metrics.records_dropped.inc(len(records), kind="refused")

    def _poisoned(self, where: str, exc: BaseException, records: list[Any]) -> None:
        self._metrics.records_dropped.inc(len(records), kind="poison")
        # The type and the ids only: a record's text is the user's, and an exception's
        # message may quote it.
        log.error(
            "dropped %d record(s) that could not be %s (%s): %s",
            len(records),
            "kept" if where == "add" else "sent",
            type(exc).__name__,
            ", ".join(_record_id(r) for r in records[:10]),
        )
