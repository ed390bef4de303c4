"""A loopback Realtime provider that speaks the documented event protocol.

For tests, `opendot bench` and the keyless demo: the runtime connects to it
exactly as to OpenAI (`baseUrl` / OPENAI_BASE_URL = its `base_url`), so the
whole bridge — key headers, netguard, session.update, memory replay, appends,
commits, truncation, cancellation, failure handling — runs for real.

What it does, per WebSocket on `…/realtime`:
- checks the key (`Authorization: Bearer` or Azure's `api-key`) when it has one;
- `session.update` -> `session.updated`; items are kept as its conversation;
- appends run through an energy detector following the session's turn
  detection (`speech_started`, `speech_stopped` after the silence, commit);
  `turn_detection: null` waits for the client's `commit` + `response.create`;
- the input is "transcribed" by `transcribe(pcm24k)` (default: a fixed text),
  the reply text comes from `reply(conversation, transcript)` (default: an
  echo that also repeats the previous user message, so memory is audible) and
  is spoken by `speak(text)` (default: a tone as long as the text);
- a response streams transcript and audio deltas (`delta_ms` each, optionally
  paced), then `response.done`; `response.cancel` and a barge-in (with
  `interrupt_response`) end it as cancelled; `conversation.item.truncate` is
  recorded and answered.

Failure switches (`FakeRealtime` attributes, changeable while it runs):
`refuse_status` (handshake answered with that HTTP status), `drop_after_deltas`
(the socket closes with 1011 mid-response), `fail_response` ((code, message):
`response.done` failed, preceded by an `error` event). `POST
…/realtime/client_secrets` mints `ek_fake_…` secrets and records each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.protocol.errors import ProtocolError
from runtime.protocol.realtime import (
    AudioAppend,
    AudioClear,
    AudioCommit,
    AudioDelta,
    AudioDone,
    BufferCleared,
    BufferCommitted,
    ClientEvent,
    Error,
    FunctionCall,
    InputTranscript,
    ItemAdded,
    ItemCreate,
    ItemTruncate,
    ItemTruncated,
    OutputItemAdded,
    RateLimit,
    RateLimitsUpdated,
    ResponseCancel,
    ResponseCreate,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    SessionCreated,
    SessionUpdate,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TranscriptDelta,
    TranscriptDone,
    parse_client_event,
)
from runtime.protocol.realtime_session import PCM_RATE, MessageItem, SessionConfig

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_EAGERNESS_SILENCE_MS = {"low": 800, "medium": 500, "auto": 500, "high": 250}


def echo_reply(conversation: list[MessageItem], transcript: str) -> str:
    said = [item.text for item in conversation if item.role == "user" and item.text]
    text = f"You said: {_sentence(transcript)}" if transcript else "I did not hear anything."
    earlier = said[:-1] if said and said[-1] == transcript else said
    if earlier:
        text += f" Before that you said: {_sentence(earlier[-1])}"
    return text


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def tone(text: str, ms_per_char: float = 50.0, rate: int = PCM_RATE) -> bytes:
    """A quiet 220 Hz tone as long as `text` would take to say."""
    n = max(rate // 10, int(len(text) * ms_per_char * rate / 1000))
    samples = (3000 * np.sin(2 * math.pi * 220 * np.arange(n) / rate)).astype("<i2")
    return samples.tobytes()


@dataclass
class FakeSession:
    """One provider session as the fake saw it."""

    headers: dict[str, str]
    query: str
    config: SessionConfig = field(default_factory=SessionConfig)
    events: list[ClientEvent] = field(default_factory=list)
    received_at: list[tuple[str, float]] = field(default_factory=list)  # (type, monotonic)
    conversation: list[MessageItem] = field(default_factory=list)
    truncates: list[ItemTruncate] = field(default_factory=list)
    audio_bytes: int = 0
    bytes_in: int = 0  # of every client message, as sent
    commits: int = 0
    responses: int = 0
    cancelled: int = 0
    closed: bool = False

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.received_at]


@dataclass(frozen=True, slots=True)
class ToolDemo:
    """A scripted tool use: `call(heard, offered tools)` names a function to call instead
    of answering (its name and JSON arguments) or None; once the client sends the call's
    output and asks for a response, `answer(name, arguments, output)` is what is said."""

    call: Callable[[str, Sequence[Mapping[str, Any]]], tuple[str, str] | None]
    answer: Callable[[str, str, str], str]


@dataclass
class _Conn:
    session: FakeSession
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    buffer: bytearray = field(default_factory=bytearray)
    position_ms: float = 0.0
    speaking: bool = False
    silent_ms: float = 0.0
    item_id: str = ""
    response: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    closed: bool = False
    called: tuple[str, str] | None = None  # the ToolDemo call awaiting its output
    tool_output: str | None = None


class FakeRealtime:
    def __init__(
        self,
        *,
        transcript: str | Callable[[bytes], str | Awaitable[str]] = "hello there",
        reply: Callable[[list[MessageItem], str], str] = echo_reply,
        speak: Callable[[str], bytes] | None = None,
        ms_per_char: float = 50.0,
        delta_ms: int = 100,
        delta_interval_s: float = 0.0,
        api_key: str | None = None,
        vad_rms: float = 400.0,
        tool_demo: ToolDemo | None = None,
    ) -> None:
        self.transcript = transcript
        self.reply = reply
        self.speak = speak or (lambda text: tone(text, ms_per_char))
        self.delta_ms = delta_ms
        self.delta_interval_s = delta_interval_s
        self.api_key = api_key
        self.vad_rms = vad_rms
        self.tool_demo = tool_demo
        self.refuse_status: int | None = None
        self.drop_after_deltas: int | None = None
        self.fail_response: tuple[str, str] | None = None
        self.sessions: list[FakeSession] = []
        self.secret_requests: list[dict[str, Any]] = []

    # --- ASGI -----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", "")).rstrip("/")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["type"] == "websocket" and path.endswith("/realtime"):
            await self._socket(scope, receive, send, headers)
        elif scope["type"] == "http" and path.endswith("/realtime/client_secrets"):
            await self._client_secret(receive, send, headers)
        elif scope["type"] == "http":
            await _http(send, 404, {"error": {"message": "not found"}})

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.api_key is None:
            return True
        return headers.get("authorization") == f"Bearer {self.api_key}" or (
            headers.get("api-key") == self.api_key
        )

    async def _client_secret(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = None
        self.secret_requests.append({"headers": headers, "body": payload})
        if not self._authorised(headers):
            await _http(send, 401, {"error": {"message": "Incorrect API key provided."}})
            return
        if self.refuse_status is not None:
            await _http(send, self.refuse_status, {"error": {"message": "refused by the fake"}})
            return
        if not isinstance(payload, dict) or not isinstance(payload.get("session"), dict):
            await _http(send, 400, {"error": {"message": "session is required"}})
            return
        number = len(self.secret_requests)
        await _http(
            send,
            200,
            {
                "value": f"ek_fake_{number}",
                "expires_at": int(time.time()) + 600,
                "session": payload["session"],
            },
        )

    async def _socket(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        status = 401 if not self._authorised(headers) else self.refuse_status
        if status is not None:
            body = json.dumps({"error": {"message": f"refused ({status})"}}).encode()
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
            return
        await send({"type": "websocket.accept"})
        session = FakeSession(headers, scope.get("query_string", b"").decode("latin-1"))
        self.sessions.append(session)
        conn = _Conn(session)
        await self._emit(send, conn, SessionCreated(session.config))
        try:
            while not conn.closed:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    continue
                await self._on_event(send, conn, text)
        finally:
            conn.closed = session.closed = True
            if conn.response is not None:
                conn.response.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await conn.response

    async def _emit(self, send: Send, conn: _Conn, event: ServerEvent) -> None:
        if conn.closed:
            return
        async with conn.send_lock:
            await send({"type": "websocket.send", "text": event.to_json(f"event_{next(conn.ids)}")})

    # --- client events ------------------------------------------------------------------

    async def _on_event(self, send: Send, conn: _Conn, text: str) -> None:
        session = conn.session
        session.bytes_in += len(text)
        event = parse_client_event(text)
        kind = "?" if isinstance(event, ProtocolError) else event.TYPE
        session.received_at.append((str(kind), time.monotonic()))
        if isinstance(event, ProtocolError):
            await self._emit(send, conn, Error("invalid_request_error", event.message))
            return
        session.events.append(event)
        if isinstance(event, SessionUpdate):
            session.config = event.session
            await self._emit(send, conn, SessionUpdated(event.session))
        elif isinstance(event, AudioAppend):
            await self._append(send, conn, event.pcm)
        elif isinstance(event, AudioCommit):
            await self._commit(send, conn)
        elif isinstance(event, AudioClear):
            conn.buffer.clear()
            conn.speaking = False
            await self._emit(send, conn, BufferCleared())
        elif isinstance(event, ItemCreate):
            item_id = f"item_c{next(conn.ids)}"
            if isinstance(event.item, MessageItem):
                session.conversation.append(event.item)
                await self._emit(send, conn, ItemAdded(item_id, "message", "user"))
            else:
                conn.tool_output = event.item.output
                await self._emit(send, conn, ItemAdded(item_id, "function_call_output"))
        elif isinstance(event, ItemTruncate):
            session.truncates.append(event)
            await self._emit(send, conn, ItemTruncated(event.item_id, event.audio_end_ms))
        elif isinstance(event, ResponseCreate):
            self._start_response(send, conn)
        elif isinstance(event, ResponseCancel):
            await self._cancel(send, conn, "client_cancelled")

    async def _append(self, send: Send, conn: _Conn, pcm: bytes) -> None:
        session = conn.session
        session.audio_bytes += len(pcm)
        conn.buffer += pcm
        ms = len(pcm) / 2 / PCM_RATE * 1000
        conn.position_ms += ms
        turn = session.config.turn_detection
        if turn is None or not pcm:
            return
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32)
        loud = samples.size > 0 and math.sqrt(float(np.dot(samples, samples)) / samples.size) > (
            self.vad_rms
        )
        if loud and not conn.speaking:
            conn.speaking, conn.silent_ms = True, 0.0
            conn.item_id = f"item_u{next(conn.ids)}"
            start = int(max(0.0, conn.position_ms - ms))
            await self._emit(send, conn, SpeechStarted(conn.item_id, start))
            if conn.response is not None and turn.interrupt_response:
                await self._cancel(send, conn, "turn_detected")
            return
        if not conn.speaking:
            # Keep only a little silence before speech, as the prefix padding does.
            del conn.buffer[: max(0, len(conn.buffer) - PCM_RATE * 2 * 300 // 1000)]
            return
        conn.silent_ms = 0.0 if loud else conn.silent_ms + ms
        silence = (
            turn.silence_duration_ms
            if turn.type == "server_vad"
            else _EAGERNESS_SILENCE_MS.get(turn.eagerness, 500)
        )
        if conn.silent_ms >= silence:
            conn.speaking = False
            await self._emit(send, conn, SpeechStopped(conn.item_id, int(conn.position_ms)))
            await self._commit(send, conn, respond=turn.create_response)

    async def _commit(self, send: Send, conn: _Conn, respond: bool = False) -> None:
        session = conn.session
        if not conn.buffer:
            await self._emit(
                send,
                conn,
                Error(
                    "invalid_request_error", "buffer too small", "input_audio_buffer_commit_empty"
                ),
            )
            return
        audio, conn.buffer = bytes(conn.buffer), bytearray()
        item_id = conn.item_id or f"item_u{next(conn.ids)}"
        conn.item_id = ""
        session.commits += 1
        await self._emit(send, conn, BufferCommitted(item_id))
        heard = self.transcript(audio) if callable(self.transcript) else self.transcript
        if not isinstance(heard, str):
            heard = await heard
        session.conversation.append(MessageItem("user", heard))
        if session.config.transcription_model:
            seconds = len(audio) / 2 / PCM_RATE
            await self._emit(send, conn, InputTranscript(item_id, heard, seconds))
        if respond:
            self._start_response(send, conn)

    async def _cancel(self, send: Send, conn: _Conn, reason: str) -> None:
        task = conn.response
        if task is None or task.done():
            await self._emit(
                send,
                conn,
                Error("invalid_request_error", "no active response", "response_cancel_not_active"),
            )
            return
        conn.cancel_reason = reason
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # --- responses --------------------------------------------------------------------

    def _start_response(self, send: Send, conn: _Conn) -> None:
        if conn.response is not None and not conn.response.done():
            return  # one at a time, as the API does
        conn.cancel_reason = None
        conn.response = asyncio.create_task(self._respond(send, conn))

    async def _respond(self, send: Send, conn: _Conn) -> None:
        session = conn.session
        session.responses += 1
        response_id = f"resp_{next(conn.ids)}"
        item_id = f"item_a{next(conn.ids)}"
        heard = next((i.text for i in reversed(session.conversation) if i.role == "user"), "")
        demo, call = self.tool_demo, None
        if demo is not None and conn.called is not None and conn.tool_output is not None:
            text = demo.answer(*conn.called, conn.tool_output)
            conn.called = conn.tool_output = None
        else:
            call = demo.call(heard, session.config.tools) if demo is not None else None
            text = self.reply(session.conversation[:-1] if session.conversation else [], heard)
        try:
            await self._emit(send, conn, ResponseCreated(response_id))
            if call is not None:
                # A function call instead of an answer; the client runs it, sends its
                # output as an item and asks for the next response.
                conn.called = call
                await self._emit(send, conn, OutputItemAdded(response_id, item_id, "function_call"))
                call_id = f"call_{next(conn.ids)}"
                await self._emit(send, conn, FunctionCall(response_id, item_id, call_id, *call))
                await self._emit(send, conn, ResponseDone(response_id))
                return
            await self._emit(
                send, conn, RateLimitsUpdated((RateLimit("requests", 1000, 999, 60.0),))
            )
            if self.fail_response is not None:
                code, message = self.fail_response
                await self._emit(send, conn, Error("invalid_request_error", message, code))
                done = ResponseDone(response_id, "failed", None, code, message)
                await self._emit(send, conn, done)
                return
            await self._emit(send, conn, OutputItemAdded(response_id, item_id))
            pcm = await asyncio.to_thread(self.speak, text) if text else b""
            step = PCM_RATE * 2 * self.delta_ms // 1000
            chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)] or [b""]
            words = text.split(" ")
            sent_words = 0
            for index, chunk in enumerate(chunks):
                due = math.ceil(len(words) * (index + 1) / len(chunks))
                if due > sent_words:
                    delta = " ".join(words[sent_words:due]) + (" " if due < len(words) else "")
                    await self._emit(send, conn, TranscriptDelta(response_id, item_id, delta))
                    sent_words = due
                if chunk:
                    await self._emit(send, conn, AudioDelta(response_id, item_id, chunk))
                if self.drop_after_deltas is not None and index + 1 >= self.drop_after_deltas:
                    conn.closed = True
                    async with conn.send_lock:
                        await send({"type": "websocket.close", "code": 1011, "reason": "dropped"})
                    return
                if self.delta_interval_s:
                    await asyncio.sleep(self.delta_interval_s)
                else:
                    await asyncio.sleep(0)
            await self._emit(send, conn, AudioDone(response_id, item_id))
            await self._emit(send, conn, TranscriptDone(response_id, item_id, text))
            session.conversation.append(MessageItem("assistant", text))
            await self._emit(send, conn, ResponseDone(response_id))
        except asyncio.CancelledError:
            session.cancelled += 1
            reason = conn.cancel_reason or "client_cancelled"
            await self._emit(send, conn, ResponseDone(response_id, "cancelled", reason))
            raise


async def _http(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


@dataclass
class RunningFake:
    fake: FakeRealtime
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@contextlib.asynccontextmanager
async def running_fake(fake: FakeRealtime | None = None) -> AsyncIterator[RunningFake]:
    """Serve `fake` on a free loopback port for the duration of the block."""
    import uvicorn

    fake = fake or FakeRealtime()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        fake, log_level="warning", ws="websockets-sansio", ws_per_message_deflate=False,
        lifespan="off", ws_max_size=8 * 1024 * 1024,
    )  # fmt: skip
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield RunningFake(fake, port)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=5)
        sock.close()
