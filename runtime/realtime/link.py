"""What a device's and a browser's speech-to-speech side share: one turn's life.

`RealtimeLink` owns the bridge of one session and follows its turns: a turn
begins when the user's speech ends (`begin_turn`), adopts the next response the
provider creates, collects its transcripts, and ends with `response.done`, a
failure, or an interruption. Subclasses only say how things reach their client
(hooks: `_reply_started`, `_audio`, `_sentence`, `_heard`, `_finish`,
`_apologise`, `_playing_item`, `_played_ms`, `_speech_started`,
`_speech_stopped`); the public methods are final and call them.

Failures (connect, auth, a dropped socket, a failed response, no answer in
time) are handled once, here: recorded as `provider_error` events with the
provider's message, counted, noted in the fallback breaker, and, with
`fallback: "pipeline"`, the session is told to run its next turns on the
pipeline. The turn itself ends failed after the subclass's apology.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from runtime.pipeline.errors import ConfigRefused, ProviderError, ProviderTimeout
from runtime.protocol.chunks import ChunkParser
from runtime.protocol.errors import ProtocolError
from runtime.protocol.realtime import (
    AudioDelta,
    Error,
    InputTranscript,
    InputTranscriptDelta,
    InputTranscriptFailed,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    SpeechStarted,
    SpeechStopped,
    TranscriptDelta,
)
from runtime.realtime.bridge import RealtimeBridge, ToolExecutor, memory_items
from runtime.realtime.config import RealtimeConfig
from runtime.realtime.services import RealtimeServices
from runtime.session.machine import Outcome
from runtime.session.turn import TurnMarks

if TYPE_CHECKING:
    from collections.abc import Mapping

    from runtime.session.base import TurnState
    from runtime.session.context import RuntimeContext
    from runtime.session.memory import ConversationMemory

log = logging.getLogger("opendot.runtime.realtime")

FIRST_RESPONSE_TIMEOUT_S = 15.0  # speech end -> response.created
RESPONSE_TIMEOUT_S = 120.0  # the whole response
TRANSCRIPT_WAIT_S = 1.5  # after playback, for an input transcription still on its way
# Error codes that are the session's own doing and change nothing for the turn.
BENIGN_ERRORS = frozenset({"response_cancel_not_active", "input_audio_buffer_commit_empty"})


class LinkHost(Protocol):
    """What a link needs from its session (device or browser)."""

    ctx: RuntimeContext
    memory: ConversationMemory
    user_id: str

    @property
    def secrets(self) -> Mapping[str, str]: ...

    @property
    def breaker_key(self) -> str: ...

    def record_event(
        self, kind: str, payload: Mapping[str, Any], turn_id: str | None = None
    ) -> None: ...

    def realtime_failed(self) -> None: ...

    def fall_back_to_pipeline(self) -> None: ...


@dataclass(eq=False)
class RealtimeReply:
    """What one turn collects while its response streams."""

    turn_id: str
    marks: TurnMarks
    done: asyncio.Future[ResponseDone | ProviderError]
    responses: set[str] = field(default_factory=set)
    transcript: str = ""
    interim: str = ""
    text: list[str] = field(default_factory=list)
    sentences: ChunkParser = field(default_factory=ChunkParser)
    started: bool = False
    audio_ms: float = 0.0  # of provider audio handed to the client
    transcript_seen: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.TimerHandle | None = None

    @property
    def reply_text(self) -> str:
        return "".join(self.text).strip()


class RealtimeLink:
    def __init__(
        self,
        host: LinkHost,
        services: RealtimeServices,
        config: RealtimeConfig,
        *,
        tools: ToolExecutor | None = None,
    ) -> None:
        self.host = host
        self.services = services
        self.config = config
        self.tools = tools
        self.bridge: RealtimeBridge | None = None
        self.failed: ProviderError | None = None
        self.apologised = False
        self.manual = False
        self.reply: RealtimeReply | None = None
        self._cut: set[str] = set()  # responses that must not reach the client any more

    # --- lifecycle -----------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return self.failed is None and self.bridge is not None and self.bridge.usable

    @property
    def playing(self) -> bool:
        """The current reply's audio has started."""
        return self.reply is not None and self.reply.started

    def start(self) -> None:
        host = self.host
        try:
            target = self.services.target(self.config, host.secrets, host.user_id)
        except ConfigRefused as exc:
            self.on_failure(exc)
            return
        services = self.services
        self.bridge = RealtimeBridge(
            lambda: services.connect(target),
            self.config.session(manual=self.manual),
            self,
            append_ms=host.ctx.settings.realtime_append_ms,
            tools=self.tools,
            on_protocol_error=self._protocol_error,
            on_commit_sent=lambda s: host.ctx.metrics.realtime_bridge.observe(s, leg="commit"),
        )
        self.bridge.open(memory_items(host.memory.turns()))

    async def close(self) -> None:
        if self.bridge is not None:
            await self.bridge.close()
        self._closed()

    def feed(self, pcm16k: bytes) -> None:
        if self.bridge is not None:
            self.bridge.feed(pcm16k)

    def begin_turn(self, marks: TurnMarks) -> RealtimeReply:
        """The user's turn ended (provider speech stop, `listen stop`, finalize)."""
        loop = asyncio.get_running_loop()
        reply = RealtimeReply(str(uuid.uuid4()), marks, loop.create_future())
        reply.timer = loop.call_later(FIRST_RESPONSE_TIMEOUT_S, self._no_response, reply)
        self.reply = reply
        bridge = self.bridge
        if bridge is not None and self.failed is None:
            if self.manual:
                bridge.commit(respond=True)
            elif not self.config.turn_detection.create_response:
                bridge.respond()
        return reply

    def interrupt(self, outcome: Outcome) -> None:
        """Barge-in, abort or interrupt: tell the provider what was heard, stop it,
        drop what is still on its way. Call before the client is flushed."""
        bridge, reply = self.bridge, self.reply
        if reply is not None:
            self._cut |= reply.responses
        if bridge is not None:
            if bridge.response_id is not None:
                self._cut.add(bridge.response_id)
            item = self._playing_item()
            if item is not None:
                sent = bridge.truncate(item, self._played_ms(item))
                if sent is not None:
                    self.host.record_event(
                        "realtime_truncate",
                        {"itemId": item, "playedMs": sent, "outcome": outcome.value},
                        reply.turn_id if reply is not None else None,
                    )
            bridge.cancel()
        self._interrupted()

    # --- the turn (awaited by the session's turn task) ----------------------------------

    async def run(self, reply: RealtimeReply, turn: TurnState) -> None:
        host = self.host
        try:
            result = self.failed if self.failed is not None else await self._wait(reply)
            if isinstance(result, ProviderError):
                turn.outcome, turn.error = Outcome.FAILED, str(result)
                await self._apologise_once(reply)
                return
            if result.failed:
                turn.outcome = Outcome.FAILED
                turn.error = result.error_message or "the provider could not answer"
                payload = {
                    "stage": "realtime",
                    "status": result.status,
                    "code": result.error_code,
                    "message": result.error_message,
                }
                host.record_event("provider_error", payload, reply.turn_id)
                self._note_failure()
                await self._apologise_once(reply)
                return
            await self._finish(reply)
            if not reply.transcript:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reply.transcript_seen.wait(), TRANSCRIPT_WAIT_S)
            if result.status == "completed" and reply.started:
                turn.outcome, turn.error = Outcome.COMPLETED, None
            elif result.status == "cancelled":
                turn.outcome = Outcome.INTERRUPTED
            else:
                turn.outcome = Outcome.FAILED
                reason = f" ({result.reason})" if result.reason else ""
                turn.error = f"response {result.status}{reason}"
        finally:
            if reply.timer is not None:
                reply.timer.cancel()
            marks = reply.marks.values
            if "first_chunk" in marks and "first_audio" in marks:
                first_frame = marks["first_audio"] - marks["first_chunk"]
                host.ctx.metrics.realtime_bridge.observe(first_frame, leg="first_frame")
            turn.transcript = reply.transcript or reply.interim.strip()
            turn.reply_text = reply.reply_text
            if self.reply is reply:
                self.reply = None
            self._turn_over()
        if turn.outcome is Outcome.COMPLETED:
            host.memory.add(turn.transcript, turn.reply_text)
            self.services.breaker.succeeded(host.breaker_key)
            self.apologised = False

    async def _wait(self, reply: RealtimeReply) -> ResponseDone | ProviderError:
        try:
            return await asyncio.wait_for(asyncio.shield(reply.done), RESPONSE_TIMEOUT_S)
        except TimeoutError:
            error = ProviderTimeout("realtime", "the response did not finish in time")
            self.on_failure(error)
            return error

    def _no_response(self, reply: RealtimeReply) -> None:
        if not reply.responses and not reply.done.done():
            self.on_failure(ProviderTimeout("realtime", "no answer from the provider in time"))

    async def _apologise_once(self, reply: RealtimeReply) -> None:
        if self.apologised and not self.config.falls_back_to_pipeline:
            return  # once per failure streak; the provider is tried again later
        self.apologised = True
        await self._apologise(reply)

    # --- provider events (called by the bridge's reader) -----------------------------

    def on_event(self, event: ServerEvent) -> None:
        reply = self.reply
        if isinstance(event, AudioDelta):
            if reply is not None and event.response_id in reply.responses:
                reply.marks.mark("first_chunk")
                self._start(reply)
                reply.audio_ms += len(event.pcm) / 48  # PCM16 24 kHz: 48 bytes per ms
                self._audio(reply, event)
        elif isinstance(event, TranscriptDelta):
            if reply is not None and event.response_id in reply.responses:
                reply.marks.mark("llm_first_token")
                reply.text.append(event.delta)
                for sentence in reply.sentences.feed(event.delta):
                    self._start(reply)
                    self._sentence(reply, sentence)
        elif isinstance(event, SpeechStarted):
            self._speech_started()
        elif isinstance(event, SpeechStopped):
            self._speech_stopped()
        elif isinstance(event, ResponseCreated):
            self._response_created(event.response_id)
        elif isinstance(event, ResponseDone):
            self._response_done(event)
        elif isinstance(event, InputTranscriptDelta):
            if reply is not None:
                reply.interim += event.delta
        elif isinstance(event, InputTranscript):
            if reply is not None:
                reply.marks.mark("stt_final")
                reply.transcript = " ".join(p for p in (reply.transcript, event.transcript) if p)
                reply.transcript_seen.set()
            if event.transcript:
                self._heard(reply, event.transcript)
        elif isinstance(event, InputTranscriptFailed):
            self._provider_error("realtime_transcription", event.code, event.message)
            if reply is not None:
                reply.transcript_seen.set()
        elif isinstance(event, Error) and event.code not in BENIGN_ERRORS:
            self._provider_error("realtime", event.code, event.message, event.kind)

    def _provider_error(
        self, stage: str, code: str | None, message: str, kind: str | None = None
    ) -> None:
        payload = {"stage": stage, "code": code, "message": message}
        if kind is not None:
            payload["type"] = kind
        reply = self.reply
        self.host.record_event("provider_error", payload, reply.turn_id if reply else None)

    def _response_created(self, response_id: str) -> None:
        if self.reply is None:
            self._unexpected_response()
        reply = self.reply
        if reply is None or response_id in self._cut:
            self._cut.add(response_id)  # nobody waits for it: it never reaches the client
            return
        reply.responses.add(response_id)

    def _response_done(self, event: ResponseDone) -> None:
        reply = self.reply
        if reply is None or event.response_id not in reply.responses or reply.done.done():
            return
        if event.status == "cancelled" and event.reason == "turn_detected" and not reply.started:
            # The person went on talking before anything played: the next response answers.
            reply.responses.discard(event.response_id)
            return
        if self.bridge is not None and self.bridge.tool_calls_pending and not event.failed:
            return  # a tool runs; its output asks for the next response of this turn
        reply.done.set_result(event)

    def _start(self, reply: RealtimeReply) -> None:
        if not reply.started:
            reply.started = True
            self._reply_started(reply)

    def on_failure(self, error: ProviderError) -> None:
        """The provider is gone (or refused): record, fall back if configured, end the turn."""
        if self.failed is not None:
            return
        self.failed = error
        host = self.host
        if self.bridge is not None:
            host.ctx.spawn(self.bridge.close(), name="realtime-close")
        reply = self.reply
        host.record_event(
            "provider_error",
            {"stage": "realtime", "message": str(error), "kind": type(error).__name__},
            reply.turn_id if reply is not None else None,
        )
        host.ctx.metrics.provider_errors.inc(stage="realtime")
        self._note_failure()
        if reply is not None and not reply.done.done():
            reply.done.set_result(error)
        elif reply is None:
            host.realtime_failed()

    def _note_failure(self) -> None:
        cooldown = self.services.breaker.failed(self.host.breaker_key)
        if self.config.falls_back_to_pipeline:
            log.info("%s: realtime off for %.0f s", self.host.breaker_key, cooldown)
            self.host.fall_back_to_pipeline()

    def _protocol_error(self, error: ProtocolError) -> None:
        self.host.record_event("provider_protocol_error", {"message": error.message})

    # --- hooks ---------------------------------------------------------------------

    def _reply_started(self, reply: RealtimeReply) -> None:
        """The first audio or sentence of a reply is about to reach the client."""

    def _audio(self, reply: RealtimeReply, event: AudioDelta) -> None:
        """Provider audio (PCM16 24 kHz) of the current reply."""

    def _sentence(self, reply: RealtimeReply, text: str) -> None:
        """A complete sentence of the reply's transcript."""

    def _heard(self, reply: RealtimeReply | None, transcript: str) -> None:
        """What the person said (input transcription)."""

    def _speech_started(self) -> None:
        """The provider heard speech begin."""

    def _speech_stopped(self) -> None:
        """The provider heard speech end."""

    def _unexpected_response(self) -> None:
        """A response began with no turn waiting; a host may begin one now."""

    async def _finish(self, reply: RealtimeReply) -> None:
        """The response is complete: flush what is left to the client."""

    async def _apologise(self, reply: RealtimeReply) -> None:
        """Say sorry with the offline voice."""

    def _playing_item(self) -> str | None:
        return None

    def _played_ms(self, item_id: str) -> int:
        return 0

    def _interrupted(self) -> None:
        """Drop the client-side state of the cut reply."""

    def _turn_over(self) -> None:
        """A turn ended: free per-turn resources."""

    def _closed(self) -> None:
        """The link closed: free everything."""
