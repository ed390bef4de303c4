"""Persistence of sessions, turns and events without ever blocking audio.

Sessions call the synchronous `open_session / add_turn / add_event / close_session`
methods, which only append to memory. One background task (`run`) posts them to
the internal API in batches: session opens first (records reference them), then
turns and events, then closes. When the API is down the task retries with
exponential backoff while the buffer is bounded: when it is full the oldest
*event* is dropped, and a turn only when no event is left; every drop is counted.
All endpoints are idempotent on the record ids, so a retry after a lost answer
is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from runtime.api_client import ApiError, ApiRefused
from runtime.metrics import Metrics

log = logging.getLogger("opendot.runtime.records")

BATCH_TURNS = 100
BATCH_EVENTS = 400
BACKOFF_MAX_S = 10.0


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
        on_turns_persisted: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._api = api
        self._metrics = metrics
        self._max = max_buffered
        self._interval = flush_interval_s
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

    # --- producers (synchronous, never block) ----------------------------------------

    @property
    def pending(self) -> int:
        return len(self._opens) + len(self._closes) + len(self._turns) + len(self._events)

    def open_session(self, body: dict[str, Any]) -> None:
        self._opens[body["sessionId"]] = body
        self._bound_sessions(self._opens)
        self._wake.set()

    def close_session(self, body: dict[str, Any]) -> None:
        self._closes[body["sessionId"]] = body
        self._bound_sessions(self._closes)
        self._wake.set()

    def add_turn(self, turn: dict[str, Any]) -> None:
        self._make_room()
        self._turns.append(turn)
        self._wake.set()

    def add_event(self, event: dict[str, Any]) -> None:
        self._make_room()
        self._events.append(event)

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

    async def run(self) -> None:
        """Flush forever; cancel to stop (call `drain` first to push what is left)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            if not self.pending:
                continue
            # Batch what arrives within one interval instead of one POST per record.
            await asyncio.sleep(min(self._interval, 0.05))
            if await self.flush_once():
                self._failures = 0
            else:
                self._failures += 1
                await asyncio.sleep(min(0.25 * 2 ** (self._failures - 1), BACKOFF_MAX_S))

    async def drain(self, deadline_s: float) -> bool:
        """Try to push everything within `deadline_s`; True when the buffer is empty."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        delay = 0.05
        while self.pending and loop.time() < end:
            if not await self.flush_once():
                await asyncio.sleep(min(delay, max(0.0, end - loop.time())))
                delay = min(delay * 2, 1.0)
        return not self.pending

    async def flush_once(self) -> bool:
        """One pass over the buffer. False when the API could not be reached."""
        async with self._lock:
            return await self._flush_pass()

    async def _flush_pass(self) -> bool:
        try:
            await self._send_opens()
            while self._turns or self._events:
                turns = list(self._turns)[:BATCH_TURNS]
                events = list(self._events)[:BATCH_EVENTS]
                await self._send(self._api.post_records(turns, events))
                # Remove exactly what was sent: during the await new records may have
                # arrived and old ones may have been dropped to make room.
                sent = {id(r) for r in turns} | {id(r) for r in events}
                self._turns = deque(t for t in self._turns if id(t) not in sent)
                self._events = deque(e for e in self._events if id(e) not in sent)
                self._metrics.records_sent.inc(len(turns), kind="turn")
                self._metrics.records_sent.inc(len(events), kind="event")
                if self._on_turns_persisted is not None and turns:
                    self._on_turns_persisted([str(t["id"]) for t in turns])
                # A session may have started while that batch was in flight: the API
                # refuses records of a session it has not seen opened.
                await self._send_opens()
            for session_id, body in list(self._closes.items()):
                if session_id in self._opens:
                    continue
                await self._send(self._api.close_session(body))
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
            await self._send(self._api.open_session(body))
            self._opens.pop(session_id, None)

    async def _send(self, call: Any) -> None:
        try:
            await call
        except ApiRefused as exc:
            # A 4xx will not get better with retries; drop that batch and say so loudly,
            # so a contract mismatch cannot wedge the buffer.
            log.error("internal API refused records: %s", exc)
            self._metrics.api_errors.inc(endpoint="records_refused")
