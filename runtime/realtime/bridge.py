"""The bridge: one Realtime provider session for one device or browser session.

Uplink: PCM16 16 kHz from the session -> soxr to the session's input rate
(24 kHz) -> `input_audio_buffer.append` batches of `append_ms` (one 60 ms
device frame per provider message costs more: see BENCHMARKS.md) -> the
provider. Audio that arrives while the socket is still connecting waits in a
bounded queue and goes out, in order, right after `session.update` and the
replayed memory.

Downlink: a reader task parses every provider message (`protocol.realtime`),
keeps the little state the session needs (the response in progress, how much
audio each output item has), and hands each event to the `BridgeListener`
synchronously, so a barge-in (`speech_started`) is acted on the moment it is
read, never behind queued audio.

Every outgoing event goes through one writer task, in order; the sync methods
(`feed`, `commit`, `truncate`, `cancel`, ...) only queue, so the session's
receive loop and its interrupt path never wait for the provider.

Tools (the seam for the tools issue): a `ToolExecutor` offers definitions for
`session.update` and runs calls; the bridge sends each result as a
`function_call_output` item and asks for the next response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from runtime.audio.resample import StreamResampler
from runtime.pipeline.errors import ProviderError
from runtime.pipeline.interfaces import ToolResult, ToolSpec
from runtime.protocol.errors import ProtocolError
from runtime.protocol.realtime import (
    AudioAppend,
    AudioClear,
    AudioCommit,
    AudioDelta,
    FunctionCall,
    ItemCreate,
    ItemTruncate,
    ResponseCancel,
    ResponseCreate,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    SessionUpdate,
    parse_server_event,
)
from runtime.protocol.realtime_session import (
    PCM_RATE,
    FunctionCallOutput,
    MessageItem,
    SessionConfig,
)

log = logging.getLogger("opendot.runtime.realtime")

UPLINK_RATE = 16_000
PENDING_AUDIO_S = 5.0  # audio kept while connecting; older audio is dropped
KEEP_ITEMS = 8  # output items whose audio length is remembered (for truncation)


class Connection(Protocol):
    """A provider socket (`connection.RealtimeConnection`, `loopback.LoopbackConnection`)."""

    messages_sent: int
    bytes_sent: int

    async def send(self, text: str) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self) -> None: ...


Connector = Callable[[], Awaitable[Connection]]
_COMMIT = AudioCommit().to_json()
_APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"'


class BridgeListener(Protocol):
    def on_event(self, event: ServerEvent) -> None: ...

    def on_failure(self, error: ProviderError) -> None: ...


class ToolExecutor(Protocol):
    """The session's tools (`runtime.tools.box.ToolBox` is one): offered in
    `session.update`, called when the model asks; a call never raises."""

    def specs(self) -> Sequence[ToolSpec]: ...

    async def call(self, name: str, arguments: str, call_id: str = "") -> ToolResult: ...


def tool_definitions(specs: Iterable[ToolSpec]) -> list[dict[str, Any]]:
    """Realtime function tools (a flat `{type, name, description, parameters}`)."""
    return [
        {
            "type": "function",
            "name": spec.name,
            "description": spec.description,
            "parameters": dict(spec.parameters),
        }
        for spec in specs
    ]


def memory_items(turns: Iterable[tuple[str, str]]) -> list[MessageItem]:
    """A device's remembered turns as conversation items, oldest first."""
    items: list[MessageItem] = []
    for user, assistant in turns:
        if user:
            items.append(MessageItem("user", user))
        if assistant:
            items.append(MessageItem("assistant", assistant))
    return items


class RealtimeBridge:
    def __init__(
        self,
        connector: Connector,
        session: SessionConfig,
        listener: BridgeListener,
        *,
        append_ms: int = 120,
        tools: ToolExecutor | None = None,
        on_protocol_error: Callable[[ProtocolError], None] | None = None,
        on_commit_sent: Callable[[float], None] | None = None,
    ) -> None:
        self._connector = connector
        self._session = session
        self._listener = listener
        self._tools = tools
        self._on_protocol_error = on_protocol_error
        self._on_commit_sent = on_commit_sent
        self._commits_queued: deque[float] = deque()  # loop times of commits not yet sent
        self._append_bytes = max(2, PCM_RATE * 2 * append_ms // 1000 // 2 * 2)
        self._resampler: StreamResampler | None = None
        self._batch = bytearray()
        self._out: deque[str] = deque()
        self._pending_audio = 0  # bytes of audio queued before the socket opened
        self._wake = asyncio.Event()
        self._conn: Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.state = "idle"  # idle | connecting | open | failed | closed
        self.error: ProviderError | None = None
        self.response_id: str | None = None  # the response in progress
        self._item_audio: OrderedDict[str, int] = OrderedDict()  # item id -> PCM bytes received
        self.tool_calls_pending = 0

    # --- lifecycle -----------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return self.state in ("connecting", "open")

    @property
    def messages_sent(self) -> int:
        return self._conn.messages_sent if self._conn is not None else 0

    @property
    def bytes_sent(self) -> int:
        return self._conn.bytes_sent if self._conn is not None else 0

    def open(self, memory: Iterable[MessageItem] = ()) -> None:
        """Connect in the background; events queued meanwhile follow the setup."""
        if self.state != "idle":
            return
        self.state = "connecting"
        setup = [SessionUpdate(self._with_tools(self._session)).to_json()]
        setup += [ItemCreate(item).to_json() for item in memory]
        self._out.extendleft(reversed(setup))
        self._tasks.append(asyncio.create_task(self._run(), name="realtime-bridge"))

    async def close(self) -> None:
        if self.state in ("connecting", "open"):
            self.state = "closed"
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._resampler = None  # native state: free it now, not when a cycle is collected
        self._batch.clear()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()

    def _with_tools(self, session: SessionConfig) -> SessionConfig:
        if self._tools is None or session.tools:
            return session
        return replace(session, tools=tuple(tool_definitions(self._tools.specs())))

    # --- outgoing (sync: they only queue) ----------------------------------------------

    def _send(self, text: str) -> None:
        if self.state in ("failed", "closed"):
            return
        self._out.append(text)
        self._wake.set()

    def feed(self, pcm16k: bytes) -> None:
        """Uplink audio (PCM16 16 kHz); batched into appends of `append_ms`."""
        if not self.usable:
            return
        if self._resampler is None:
            self._resampler = StreamResampler(UPLINK_RATE, self._session.input_rate)
        self._batch += self._resampler.process(pcm16k)
        if len(self._batch) >= self._append_bytes:
            self._flush_batch()

    def _flush_batch(self) -> None:
        if not self._batch:
            return
        self._send(AudioAppend(bytes(self._batch)).to_json())
        if self.state == "connecting":
            self._pending_audio += len(self._batch)
            while self._pending_audio > PENDING_AUDIO_S * self._session.input_rate * 2:
                self._drop_oldest_append()
        self._batch.clear()

    def _drop_oldest_append(self) -> None:
        for index, text in enumerate(self._out):
            if text.startswith(_APPEND_PREFIX):
                del self._out[index]
                self._pending_audio -= (len(text) - len(_APPEND_PREFIX) - 2) * 3 // 4
                return
        self._pending_audio = 0

    def commit(self, respond: bool = True) -> None:
        """End of the user's turn (manual listening): commit what was heard, and answer."""
        if self._resampler is not None:
            self._batch += self._resampler.flush()  # the filter's last ~25 ms of speech
        self._flush_batch()
        self._commits_queued.append(asyncio.get_running_loop().time())
        self._send(AudioCommit().to_json())
        if respond:
            self._send(ResponseCreate().to_json())

    def clear_input(self) -> None:
        self._batch.clear()
        self._send(AudioClear().to_json())

    def update_session(self, session: SessionConfig) -> None:
        if session != self._session:
            self._session = session
            self._send(SessionUpdate(self._with_tools(session)).to_json())

    def respond(self) -> None:
        self._send(ResponseCreate().to_json())

    def cancel(self) -> None:
        """Stop the response in progress (no-op when none is)."""
        if self.response_id is not None:
            self._send(ResponseCancel(self.response_id).to_json())
            self.response_id = None

    def audio_ms(self, item_id: str) -> int:
        return self._item_audio.get(item_id, 0) * 1000 // (2 * PCM_RATE)

    def truncate(self, item_id: str, played_ms: int) -> int | None:
        """Tell the provider the item was heard only up to `played_ms`; returns the
        milliseconds sent, or None when nothing was cut (all of it was heard)."""
        received = self.audio_ms(item_id)
        end = max(0, min(played_ms, received))
        if not item_id or end >= received:
            return None
        self._send(ItemTruncate(item_id, end).to_json())
        return end

    # --- the tasks -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            conn = await self._connector()
        except ProviderError as exc:
            self._fail(exc)
            return
        if self.state != "connecting":  # closed while connecting
            await conn.close()
            return
        self._conn = conn
        self.state = "open"
        self._pending_audio = 0
        self._tasks.append(asyncio.create_task(self._write(conn), name="realtime-writer"))
        await self._read(conn)

    async def _write(self, conn: Connection) -> None:
        out = self._out
        loop = asyncio.get_running_loop()
        try:
            while True:
                while out:
                    text = out.popleft()
                    await conn.send(text)
                    if text == _COMMIT and self._commits_queued:
                        queued = self._commits_queued.popleft()
                        if self._on_commit_sent is not None:
                            self._on_commit_sent(loop.time() - queued)
                self._wake.clear()
                await self._wake.wait()
        except ProviderError:
            return  # the reader sees the same close and reports it

    async def _read(self, conn: Connection) -> None:
        while True:
            try:
                message = await conn.recv()
            except ProviderError as exc:
                if self.state == "open":
                    self._fail(exc)
                return
            if isinstance(message, bytes):
                continue  # the Realtime API sends only text events
            event = parse_server_event(message)
            if isinstance(event, ProtocolError):
                if self._on_protocol_error is not None:
                    self._on_protocol_error(event)
                continue
            self._track(event)
            try:
                self._listener.on_event(event)
            except Exception:
                # A bug in one session's handling must not end its provider session.
                log.exception("realtime event %s failed", event.TYPE)
            if isinstance(event, AudioDelta):
                # Let the writers run: a provider sends a whole reply's deltas in a burst,
                # and the device's first packet must not wait for all of them to be encoded.
                await asyncio.sleep(0)

    def _fail(self, error: ProviderError) -> None:
        if self.state in ("failed", "closed"):
            return
        self.state = "failed"
        self.error = error
        self._out.clear()
        log.info("realtime session failed: %s", error)
        self._listener.on_failure(error)

    def _track(self, event: ServerEvent) -> None:
        if isinstance(event, AudioDelta):
            items = self._item_audio
            items[event.item_id] = items.get(event.item_id, 0) + len(event.pcm)
            items.move_to_end(event.item_id)
            while len(items) > KEEP_ITEMS:
                items.popitem(last=False)
        elif isinstance(event, ResponseCreated):
            self.response_id = event.response_id
        elif isinstance(event, ResponseDone):
            if self.response_id == event.response_id:
                self.response_id = None
        elif isinstance(event, FunctionCall) and self._tools is not None:
            self.tool_calls_pending += 1
            self._tasks.append(asyncio.create_task(self._call(event), name="realtime-tool"))

    async def _call(self, call: FunctionCall) -> None:
        assert self._tools is not None
        try:
            result = await self._tools.call(call.name, call.arguments, call.call_id)
        finally:
            self.tool_calls_pending -= 1
        self._send(ItemCreate(FunctionCallOutput(call.call_id, result.output)).to_json())
        self._send(ResponseCreate().to_json())
