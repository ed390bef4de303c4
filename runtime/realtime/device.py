"""The speech-to-speech side of a Dot's session: device audio <-> the Realtime bridge.

The device session keeps what it always owns (framing, the state machine, the
paced outbox, records, memory); this link turns provider events into what the
firmware expects:

- `speech_started` / `speech_stopped` from the provider's turn detection drive
  the session's machine exactly as the local VAD does (barge-in in realtime
  listening, end of the utterance otherwise). Manual listening switches the
  provider's turn detection off and commits on `listen stop`.
- Audio deltas (PCM16 24 kHz) are framed into 60 ms Opus packets the moment
  they arrive and queued on the outbox, which paces them to the device;
  `llm` + `tts start` precede the first packet, `tts sentence_start` follows
  each sentence of the audio transcript, `tts stop` follows the last packet.
  The input transcription goes to the device as `stt`.
- A barge-in flushes the device at once and truncates the assistant's item to
  what the device has played (`PlaybackLedger` + the pacer's model of the play
  buffer), so the model forgets what nobody heard.
- A provider failure (connect, auth, dropped socket, failed response) becomes
  a spoken apology from the offline voice in the agent's language; with
  `fallback: "pipeline"` the session's next turns run on the pipeline.

Turn marks: speech_end (provider's speech stop, or `listen stop`), stt_final
(input transcription), llm_first_token (first transcript delta), first_chunk
(first provider audio delta), first_audio (first Opus packet on the device
socket). first_audio - first_chunk is the bridge's own latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runtime.audio.opus import OpusEncoder, PcmFramer
from runtime.pipeline.errors import ConfigRefused, ProviderError, ProviderTimeout
from runtime.protocol.chunks import ChunkParser
from runtime.protocol.device import ListenMode, Llm, Stt, Tts
from runtime.protocol.emotions import detect_emotion
from runtime.protocol.errors import ProtocolError
from runtime.protocol.framing import Frame, FrameKind
from runtime.protocol.realtime import (
    AudioDelta,
    Error,
    InputTranscript,
    InputTranscriptFailed,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    SpeechStarted,
    SpeechStopped,
    TranscriptDelta,
)
from runtime.realtime.bridge import RealtimeBridge, memory_items
from runtime.realtime.config import RealtimeConfig
from runtime.realtime.playback import PlaybackLedger
from runtime.realtime.services import RealtimeServices, apology
from runtime.session.machine import Outcome, Phase
from runtime.session.outbox import Flush, SendAudio, SendText
from runtime.session.turn import Reply, TurnMarks

if TYPE_CHECKING:
    from runtime.session.base import TurnState
    from runtime.session.device import DeviceSession

log = logging.getLogger("opendot.runtime.realtime")

DOWNLINK_RATE = 24_000
FRAME_MS = 60
FIRST_RESPONSE_TIMEOUT_S = 15.0  # speech end -> response.created
RESPONSE_TIMEOUT_S = 120.0  # the whole response
TRANSCRIPT_WAIT_S = 1.5  # after playback, for an input transcription still on its way
# Error codes that are the session's own doing and change nothing for the turn.
BENIGN_ERRORS = frozenset({"response_cancel_not_active", "input_audio_buffer_commit_empty"})


@dataclass(eq=False)
class _Reply:
    """What one turn collects while its response streams."""

    turn_id: str
    marks: TurnMarks
    done: asyncio.Future[ResponseDone | ProviderError]
    responses: set[str] = field(default_factory=set)
    transcript: str = ""
    text: list[str] = field(default_factory=list)
    sentences: ChunkParser = field(default_factory=ChunkParser)
    started: bool = False
    frames: int = 0
    transcript_seen: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.TimerHandle | None = None

    @property
    def reply_text(self) -> str:
        return "".join(self.text).strip()


class DeviceRealtime:
    def __init__(
        self, session: DeviceSession, services: RealtimeServices, config: RealtimeConfig
    ) -> None:
        self.session = session
        self.services = services
        self.config = config
        self.bridge: RealtimeBridge | None = None
        self.ledger = PlaybackLedger(FRAME_MS)
        self.failed: ProviderError | None = None
        self.apologised = False
        self.manual = False
        self._reply: _Reply | None = None
        self._cut: set[str] = set()  # responses whose audio must not play any more
        self._encoder: OpusEncoder | None = None
        self._framer = PcmFramer(DOWNLINK_RATE, FRAME_MS)

    # --- lifecycle -----------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return self.failed is None and self.bridge is not None and self.bridge.usable

    @property
    def playing(self) -> bool:
        """The current reply's audio has started (the device stops hearing the user)."""
        return self._reply is not None and self._reply.started

    def start(self) -> None:
        s = self.session
        try:
            target = self.services.target(self.config, s.grant.secrets, s.user_id)
        except ConfigRefused as exc:
            self.on_failure(exc)
            return
        self.bridge = RealtimeBridge(
            lambda: self.services.connect(target),
            self.config.session(manual=self.manual),
            self,
            append_ms=self.services.append_ms,
            on_protocol_error=self._protocol_error,
        )
        self.bridge.open(memory_items(s.memory.turns()))

    async def close(self) -> None:
        if self.bridge is not None:
            await self.bridge.close()
        self._close_encoder()

    def _close_encoder(self) -> None:
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None
        self._framer.reset()

    # --- from the device session -------------------------------------------------------

    def listening(self, mode: ListenMode) -> None:
        """A listen start: manual listening ends turns by button, not by the provider."""
        manual = mode is ListenMode.MANUAL
        if self.bridge is None:
            self.manual = manual
            return
        if manual != self.manual:
            self.manual = manual
            self.bridge.update_session(self.config.session(manual=manual))
        if manual:
            self.bridge.clear_input()

    def feed(self, pcm16k: bytes) -> None:
        if self.bridge is not None:
            self.bridge.feed(pcm16k)

    def begin_turn(self, marks: TurnMarks) -> _Reply:
        """The user's turn ended (provider speech stop, `listen stop`): collect the answer."""
        loop = asyncio.get_running_loop()
        reply = _Reply(str(uuid.uuid4()), marks, loop.create_future())
        reply.timer = loop.call_later(FIRST_RESPONSE_TIMEOUT_S, self._first_response_timeout, reply)
        self._reply = reply
        if self.bridge is not None and self.failed is None:
            if self.manual:
                self.bridge.commit(respond=True)
            elif not self.config.turn_detection.create_response:
                self.bridge.respond()
        return reply

    def frame_sent(self) -> None:
        self.ledger.sent()

    def interrupt(self, outcome: Outcome) -> None:
        """Barge-in or abort, before the session flushes the device: truncate what was
        not heard, stop the response, drop what is still queued for this reply."""
        bridge = self.bridge
        reply = self._reply
        if reply is not None:
            self._cut |= reply.responses
        if bridge is not None:
            if bridge.response_id is not None:
                self._cut.add(bridge.response_id)
            item = self.ledger.playing()
            if item is not None:
                unplayed_ms = self.session.unplayed_s() * 1000
                played = self.ledger.played_ms(item, unplayed_ms)
                sent = bridge.truncate(item, played)
                if sent is not None:
                    self.session.record_event(
                        "realtime_truncate",
                        {"itemId": item, "playedMs": sent, "outcome": outcome.value},
                        reply.turn_id if reply is not None else None,
                    )
            bridge.cancel()
        self.ledger.flushed()
        self.ledger.reset()
        self._framer.reset()

    # --- the turn (awaited by the session's turn task) ----------------------------------

    async def run(self, reply: _Reply, turn: TurnState) -> None:
        s = self.session
        try:
            if self.failed is not None:
                result: ResponseDone | ProviderError = self.failed
            else:
                result = await self._wait(reply)
            if isinstance(result, ProviderError):
                turn.error = str(result)
                turn.outcome = Outcome.FAILED
                await self._apologise(reply)
                return
            if result.failed:
                turn.error = result.error_message or "the provider could not answer"
                turn.outcome = Outcome.FAILED
                s.record_event("provider_error", _failure_payload(result), reply.turn_id)
                self._note_failure()
                await self._apologise(reply)
                return
            await self._finish_playback(reply)
            if not reply.transcript:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reply.transcript_seen.wait(), TRANSCRIPT_WAIT_S)
            if result.status == "completed" and reply.frames:
                turn.outcome, turn.error = Outcome.COMPLETED, None
            elif result.status == "cancelled":
                turn.outcome = Outcome.INTERRUPTED
            else:
                turn.outcome = Outcome.FAILED
                turn.error = f"response {result.status}" + (
                    f" ({result.reason})" if result.reason else ""
                )
        finally:
            if reply.timer is not None:
                reply.timer.cancel()
            turn.transcript = reply.transcript
            turn.reply_text = reply.reply_text
            if self._reply is reply:
                self._reply = None
            self._close_encoder()
        if turn.outcome is Outcome.COMPLETED:
            s.memory.add(turn.transcript, turn.reply_text)
            self.services.breaker.succeeded(s.device_uuid)
            self.apologised = False

    async def _wait(self, reply: _Reply) -> ResponseDone | ProviderError:
        try:
            return await asyncio.wait_for(asyncio.shield(reply.done), RESPONSE_TIMEOUT_S)
        except TimeoutError:
            self.on_failure(ProviderTimeout("realtime", "the response did not finish in time"))
            return reply.done.result() if reply.done.done() else ProviderTimeout("realtime", "")

    def _first_response_timeout(self, reply: _Reply) -> None:
        if not reply.responses and not reply.done.done():
            self.on_failure(ProviderTimeout("realtime", "no answer from the provider in time"))

    async def _finish_playback(self, reply: _Reply) -> None:
        s = self.session
        put = s.outbox.put
        for text in reply.sentences.finish():
            await put(SendText(Tts.sentence_start(text).to_json(s.session_id)))
        if reply.started:
            for frame in self._framer.flush(pad=True):
                self._queue_frame(reply, frame, self.ledger.playing() or "")
            await put(SendText(Tts.stop().to_json(s.session_id)))
            await s.outbox.drained()

    async def _apologise(self, reply: _Reply) -> None:
        s = self.session
        if reply.started:
            s.outbox.control(Flush(then=(Tts.stop().to_json(s.session_id),)))
            self.ledger.reset()
            self._framer.reset()
        if self.apologised and not self.config.falls_back_to_pipeline:
            return  # once per failure streak is enough; the device goes on listening
        self.apologised = True
        text, _voice = apology(self.config.language)
        tts, options = self.services.offline_voice(self.config.language)
        await s.play(Reply.spoken(tts, text, options, reply.marks))

    # --- provider events (called by the bridge's reader) -----------------------------

    def on_event(self, event: ServerEvent) -> None:
        s = self.session
        reply = self._reply
        if isinstance(event, AudioDelta):
            self._audio(event)
        elif isinstance(event, TranscriptDelta):
            if reply is not None and event.response_id in reply.responses:
                reply.marks.mark("llm_first_token")
                reply.text.append(event.delta)
                for sentence in reply.sentences.feed(event.delta):
                    self._start(reply)
                    s.outbox.put_nowait(
                        SendText(Tts.sentence_start(sentence).to_json(s.session_id))
                    )
        elif isinstance(event, SpeechStarted):
            s.apply_machine(s.machine.speech_start())
        elif isinstance(event, SpeechStopped):
            s.apply_machine(s.machine.speech_end())
        elif isinstance(event, ResponseCreated):
            self._response_created(event.response_id)
        elif isinstance(event, ResponseDone):
            self._response_done(event)
        elif isinstance(event, InputTranscript):
            if event.transcript:
                s.outbox.put_nowait(SendText(Stt(event.transcript).to_json(s.session_id)))
            if reply is not None:
                reply.marks.mark("stt_final")
                reply.transcript = " ".join(p for p in (reply.transcript, event.transcript) if p)
                reply.transcript_seen.set()
        elif isinstance(event, InputTranscriptFailed):
            s.record_event(
                "provider_error",
                {"stage": "realtime_transcription", "code": event.code, "message": event.message},
                reply.turn_id if reply is not None else None,
            )
            if reply is not None:
                reply.transcript_seen.set()
        elif isinstance(event, Error) and event.code not in BENIGN_ERRORS:
            s.record_event(
                "provider_error",
                {
                    "stage": "realtime",
                    "code": event.code,
                    "type": event.kind,
                    "message": event.message,
                },
                reply.turn_id if reply is not None else None,
            )

    def _response_created(self, response_id: str) -> None:
        s = self.session
        if self._reply is None and s.machine.phase is Phase.LISTENING:
            # The provider answered without a speech stop we saw (semantic VAD, a tool's
            # follow-up): that is the end of the user's turn too.
            s.apply_machine(s.machine.speech_end())
        reply = self._reply
        if reply is None or response_id in self._cut:
            self._cut.add(response_id)  # nobody is waiting for it: never play it
            return
        reply.responses.add(response_id)

    def _response_done(self, event: ResponseDone) -> None:
        reply = self._reply
        if reply is None or event.response_id not in reply.responses or reply.done.done():
            return
        if event.status == "cancelled" and event.reason == "turn_detected" and not reply.frames:
            # The person went on talking before anything played: the next response is the answer.
            reply.responses.discard(event.response_id)
            return
        if self.bridge is not None and self.bridge.tool_calls_pending and not event.failed:
            return  # a tool runs; its output asks for the next response of this turn
        reply.done.set_result(event)

    def _start(self, reply: _Reply) -> None:
        if reply.started:
            return
        reply.started = True
        s = self.session
        first = reply.reply_text
        emotion = detect_emotion(first) or "happy"
        s.outbox.put_nowait(SendText(Llm(emotion).to_json(s.session_id)))
        s.outbox.put_nowait(SendText(Tts.start().to_json(s.session_id)))

    def _audio(self, event: AudioDelta) -> None:
        reply = self._reply
        if reply is None or event.response_id not in reply.responses:
            return
        reply.marks.mark("first_chunk")
        self._start(reply)
        for frame in self._framer.push(event.pcm):
            self._queue_frame(reply, frame, event.item_id)

    def _queue_frame(self, reply: _Reply, pcm: bytes, item_id: str) -> None:
        s = self.session
        if self._encoder is None:
            self._encoder = OpusEncoder(DOWNLINK_RATE, FRAME_MS, s.ctx.settings.opus_complexity)
        packet = self._encoder.encode(pcm)
        s.outbox.put_nowait(SendAudio(s.framing.serialize(Frame(FrameKind.AUDIO, packet))))
        self.ledger.queued(item_id)
        reply.frames += 1

    def on_failure(self, error: ProviderError) -> None:
        """The provider is gone (or refused): apologise, and fall back if configured."""
        if self.failed is not None:
            return
        self.failed = error
        s = self.session
        if self.bridge is not None:
            s.ctx.spawn(self.bridge.close(), name="realtime-close")
        s.record_event(
            "provider_error",
            {"stage": "realtime", "message": str(error), "kind": type(error).__name__},
            self._reply.turn_id if self._reply is not None else None,
        )
        s.ctx.metrics.provider_errors.inc(stage="realtime")
        self._note_failure()
        reply = self._reply
        if reply is not None and not reply.done.done():
            reply.done.set_result(error)
        elif reply is None:
            s.realtime_failed()

    def _note_failure(self) -> None:
        cooldown = self.services.breaker.failed(self.session.device_uuid)
        if self.config.falls_back_to_pipeline:
            log.info("device %s: realtime off for %.0f s", self.session.device_uuid, cooldown)
            self.session.fall_back_to_pipeline()

    def _protocol_error(self, error: ProtocolError) -> None:
        self.session.record_event("provider_protocol_error", {"message": error.message})


def _failure_payload(done: ResponseDone) -> dict[str, Any]:
    return {
        "stage": "realtime",
        "status": done.status,
        "code": done.error_code,
        "message": done.error_message,
    }
