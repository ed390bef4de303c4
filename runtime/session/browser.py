"""A browser's session on `/voice`: PCM16 16 kHz in, docs/protocols.md §4 events out.

Same lifecycle and turn machinery as a device (`base.VoiceSession`, `Utterance`,
`Reply`), different edges: audio arrives as raw PCM, replies go out as JSON
events with base64 audio per chunk (`chunked_file`, mp3 or wav) or as PCM
deltas (`pcm_stream`). The outbox is
bounded: a client that reads slowly makes its own turn wait (backpressure), it
never grows the runtime's memory. A new utterance while a reply plays, or an
`interrupt`, stops the reply at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

from runtime.api_client import VoiceGrant
from runtime.audio.containers import mp3_bytes, wav_bytes
from runtime.pipeline.interfaces import Transcript, VadEventKind
from runtime.pipeline.interfaces import VadEvent as PipelineVadEvent
from runtime.protocol.browser import (
    CONFIGURE_REFUSED,
    AssistantAudio,
    AssistantDelta,
    AssistantEnd,
    AssistantPcmDelta,
    AssistantStart,
    AssistantText,
    BrowserEvent,
    Configure,
    ErrorEvent,
    Finalize,
    ForceResponse,
    Interrupt,
    Reset,
    ResetDone,
    RuntimeConnected,
    RuntimeReady,
    SttFinal,
    SttInterim,
    UserFinal,
    VadEvent,
    check_browser_audio,
    parse_browser_message,
)
from runtime.protocol.errors import CloseCode, ProtocolError
from runtime.realtime.browser import BrowserRealtime
from runtime.realtime.config import RealtimeConfig, is_speech_to_speech
from runtime.session.base import STT_FINAL_TIMEOUT_S, VoiceSession
from runtime.session.context import RuntimeContext
from runtime.session.machine import Outcome
from runtime.session.memory import ConversationMemory
from runtime.session.outbox import Flush, Outbox, SendText
from runtime.session.socket import AsgiSocket
from runtime.session.turn import APOLOGY_TEXT, Reply, TurnMarks, Utterance

if TYPE_CHECKING:
    from runtime.realtime.link import RealtimeReply

log = logging.getLogger("opendot.runtime.browser")

PREROLL_BYTES = 16_000 * 2 * 300 // 1000  # 300 ms of 16 kHz PCM16


class BrowserSession(VoiceSession):
    kind = "browser"

    def __init__(self, ctx: RuntimeContext, socket: AsgiSocket, grant: VoiceGrant) -> None:
        settings = ctx.settings
        super().__init__(
            ctx,
            socket,
            Outbox(socket, max_stream=settings.browser_send_queue),
            user_id=grant.user_id,
            agent=grant.agent,
            memory=ConversationMemory(settings.memory_max_turns, settings.memory_max_tokens),
        )
        self.grant = grant
        self._preroll: deque[bytes] = deque()
        self._preroll_bytes = 0
        self._turn_id: str | None = None
        self._realtime: BrowserRealtime | None = None
        self.timezone = grant.timezone
        self.user_secrets = grant.secrets
        # When the client will have played what it was sent (loop time): a browser plays
        # a reply after the turn is over here, and can be interrupted until then.
        self._playing_until = 0.0

    # --- lifecycle -----------------------------------------------------------------

    def _send(self, event: BrowserEvent) -> None:
        self.outbox.put_nowait(SendText(event.to_json()))

    async def _put(self, event: BrowserEvent) -> None:
        await self.outbox.put(SendText(event.to_json()))

    async def _serve(self) -> str:
        ctx = self.ctx
        self._send(RuntimeConnected(self.session_id, self.config.agent_id, self.config.agent_name))
        config = RealtimeConfig.from_agent(self.agent)
        use_provider = is_speech_to_speech(self.agent) and (
            not config.falls_back_to_pipeline or ctx.realtime.breaker.allows(self.breaker_key)
        )
        if use_provider:
            self._open_realtime(config)
            self._send(RuntimeReady(sample_rate=16_000))
        elif self._start_pipeline():
            self._send(RuntimeReady(sample_rate=16_000))
        return await self._receive_loop()

    def _start_pipeline(self) -> bool:
        try:
            self.pipeline = self.ctx.pipelines(self.agent, self.grant.secrets, self.grant.user_id)
        except Exception as exc:
            log.warning("browser session: no pipeline: %s", exc)
            self._send(ErrorEvent(f"The voice pipeline could not start: {exc}"))
            self.close(CloseCode.INTERNAL_ERROR, "pipeline unavailable")
            return False
        if self.pipeline.vad is not None:
            self._vad = self.pipeline.vad.open(self.config.vad)
            # A judged pause can end the utterance between two audio messages.
            self._vad.listen(lambda events: self._on_vad_events(events, None))
        return True

    # --- speech-to-speech ------------------------------------------------------------

    @property
    def secrets(self) -> Mapping[str, str]:
        return self.grant.secrets

    @property
    def breaker_key(self) -> str:
        return f"{self.user_id}:{self.config.agent_id}"

    def _open_realtime(self, config: RealtimeConfig) -> None:
        self._realtime = BrowserRealtime(self, self.ctx.realtime, config)
        self._realtime.tools = self.toolbox()  # the same executor as the pipeline's tool loop
        self._realtime.start()

    def _close_realtime(self) -> None:
        link, self._realtime = self._realtime, None
        if link is not None:
            self.ctx.spawn(link.close(), name="realtime-close")

    def realtime_turn(self) -> None:
        """The user's turn ended on the provider's side: follow its answer."""
        link = self._realtime
        if link is None or link.reply is not None:
            return
        marks = TurnMarks()
        marks.mark("speech_end")
        reply = link.begin_turn(marks)
        previous = self._turn if self.busy else None
        self._turn = asyncio.create_task(
            self._run_realtime_turn(link, reply, marks, previous), name="browser-turn"
        )

    async def _run_realtime_turn(
        self,
        link: BrowserRealtime,
        reply: RealtimeReply,
        marks: TurnMarks,
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await previous
        self._cancel_outcome = None
        self._turn_id = reply.turn_id
        async with self._turn_scope(marks, reply.turn_id) as turn:
            await link.run(reply, turn)
            await self._send_timeline(reply.turn_id, marks)
            await self._put(AssistantEnd(reply.turn_id, turn.outcome.value))

    def barge_in(self) -> None:
        self._interrupt(Outcome.INTERRUPTED)

    async def deliver(self, reply: Reply, turn_id: str, marks: TurnMarks) -> None:
        await self._deliver(reply, turn_id, marks)

    def realtime_failed(self) -> None:
        """The provider failed between turns: the apology is a failed turn of its own."""
        self.realtime_turn()

    def fall_back_to_pipeline(self) -> None:
        """Later turns of this session run on the agent's pipeline stages."""
        self.ctx.spawn(self._switch_to_pipeline(), name="realtime-fallback")

    async def _switch_to_pipeline(self) -> None:
        turn = self._turn
        if turn is not None and not turn.done():
            with contextlib.suppress(asyncio.CancelledError):
                await turn  # the apology first, on the failed link
        self._close_realtime()
        if self.pipeline is None:
            self._start_pipeline()

    async def _receive_loop(self) -> str:
        receive = self.socket.receive
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return "closed" if self.closing else f"disconnected ({message.get('code')})"
            self.last_input = self._loop.time()
            data = message.get("bytes")
            if data is not None:
                pcm = check_browser_audio(data)
                if isinstance(pcm, ProtocolError):
                    self._protocol_error(pcm)
                else:
                    await self._on_audio(pcm)
            elif message.get("text") is not None:
                parsed = parse_browser_message(message["text"])
                if isinstance(parsed, ProtocolError):
                    self._protocol_error(parsed)
                else:
                    self._on_message(parsed)

    def _protocol_error(self, error: ProtocolError) -> None:
        self._send(ErrorEvent(error.message))
        self._note_protocol_error(error)

    # --- inbound -------------------------------------------------------------------

    def _on_message(self, message: object) -> None:
        if isinstance(message, Configure):
            self._send(ErrorEvent(CONFIGURE_REFUSED))
        elif isinstance(message, Reset):
            # A new conversation: the reply still playing belongs to the old one (a
            # cancelled turn is never remembered, so clearing after it is final).
            self.forget_memory()
            if self._realtime is not None:
                # The provider keeps its own conversation: a new one starts on a new session.
                config = self._realtime.config
                if self.busy:
                    self._interrupt(Outcome.INTERRUPTED)
                self._close_realtime()
                self._open_realtime(config)
            if self.busy:
                # `reset_done` rides on the flush: queued after it, it would be dropped.
                self._interrupt(Outcome.INTERRUPTED, then=(ResetDone().to_json(),))
            else:
                self._send(ResetDone())
        elif isinstance(message, Interrupt):
            self._interrupt(Outcome.INTERRUPTED)
        elif isinstance(message, Finalize | ForceResponse) and self._realtime is not None:
            if self._realtime.finalize():
                self.realtime_turn()
            elif isinstance(message, ForceResponse) and self._realtime.reply is None:
                self._send(ErrorEvent("Nothing has been heard yet."))
        elif isinstance(message, Finalize | ForceResponse):
            utterance = self._utterance
            if utterance is not None and (utterance.audio_bytes or utterance.finals):
                self._end_utterance()
            elif isinstance(message, ForceResponse) and self._preroll:
                # Speech too short for the VAD: answer what there is.
                self._utterance = self._new_utterance()
                self._end_utterance()
            elif isinstance(message, ForceResponse):
                self._send(ErrorEvent("Nothing has been heard yet."))

    async def _on_audio(self, pcm: bytes) -> None:
        self.ctx.metrics.frames_in.inc(kind="browser")
        if self._realtime is not None:
            self._realtime.feed(pcm)
            return
        if self.pipeline is None:
            return
        if self._vad is None:
            if self._utterance is None:
                self._utterance = self._new_utterance()
            self._feed(pcm)
            return
        self._on_vad_events(await self._vad.feed(pcm), pcm)

    def _over_reply(self) -> bool:
        """A reply is playing (or still being made) and the agent allows barge-in."""
        return self.config.barge_in and (self.busy or self._loop.time() < self._playing_until)

    def _on_vad_events(self, events: list[PipelineVadEvent], pcm: bytes | None) -> None:
        if self._utterance is None and self._over_reply():
            if pcm is not None:
                self._preroll.append(pcm)
                while len(self._preroll) > 5:  # the 300 ms before a candidate, at 60 ms
                    self._preroll.popleft()
                self._reply_frame(pcm, list(self._preroll))
            return
        if self._candidate is not None:  # the reply ended under a candidate
            barge, candidate = self._barge, self._candidate
            self._candidate = self._barge = None
            if barge is not None and not barge.stopped:
                candidate.on_transcript = self._on_transcript  # it is the utterance now
                self._utterance = candidate
                self._send(VadEvent("SpeechStarted"))
            else:
                self.ctx.spawn(candidate.cancel(), name="stt-cancel")
        fed = pcm is None
        for event in events:
            if event.kind is VadEventKind.SPEECH_START and self._utterance is None:
                self._send(VadEvent("SpeechStarted"))
                self._utterance = self._new_utterance()
                for earlier in self._preroll:
                    self._utterance.feed(earlier)
                self._preroll.clear()
                self._preroll_bytes = 0
            elif event.kind is VadEventKind.SPEECH_END and self._utterance is not None:
                if pcm is not None:
                    self._utterance.feed(pcm)
                    fed = True
                self._note_end_of_turn(event)
                self._send(VadEvent("UtteranceEnd"))
                self._end_utterance()
        if fed or pcm is None:
            return
        if self._utterance is not None:
            self._feed(pcm)
        else:
            self._preroll.append(pcm)
            self._preroll_bytes += len(pcm)
            while self._preroll_bytes > PREROLL_BYTES and len(self._preroll) > 1:
                self._preroll_bytes -= len(self._preroll.popleft())

    def _on_transcript(self, transcript: Transcript) -> None:
        if transcript.text.strip():
            event = (
                SttFinal(transcript.text) if transcript.is_final else SttInterim(transcript.text)
            )
            self._send(event)
        if transcript.speech_final and self._vad is None and self._utterance is not None:
            self._end_utterance()

    def _utterance_full(self) -> None:
        self._end_utterance()

    def _barged_in(self, utterance: Utterance) -> None:
        # `BargeIn` rides on the flush: the client stops playing what it has queued.
        self._interrupt(Outcome.INTERRUPTED, then=(VadEvent("BargeIn").to_json(),))
        self._playing_until = 0.0
        self._send(VadEvent("SpeechStarted"))
        self._utterance = utterance
        self._preroll.clear()
        self._preroll_bytes = 0
        if utterance.ended:  # its speech had already stopped: answer it now
            self._end_utterance()

    def _end_utterance(self) -> None:
        utterance, self._utterance = self._utterance, None
        self._preroll.clear()
        self._preroll_bytes = 0
        if utterance is None:
            return
        marks = TurnMarks(utterance.served)
        marks.mark("speech_end")
        previous = self._turn if self.busy else None
        if previous is not None:
            # The user spoke over the reply: stop it and answer the new utterance.
            self._interrupt(Outcome.INTERRUPTED)
        self._turn = asyncio.create_task(
            self._run_turn(utterance, marks, previous), name="browser-turn"
        )

    def _interrupt(self, outcome: Outcome, then: tuple[str, ...] = ()) -> None:
        if self._realtime is not None:
            self._realtime.interrupt(outcome)  # before the flush: it reads what was played
        flush_then: tuple[str, ...] = ()
        self._playing_until = 0.0  # the client drops what it queued
        if self.busy and self._turn is not None:
            self._cancel_outcome = outcome
            self._turn.cancel()
            if self._turn_id is not None:
                flush_then = (AssistantEnd(self._turn_id, outcome.value).to_json(),)
        self.outbox.control(Flush(then=flush_then + then))

    # --- the turn ------------------------------------------------------------------

    async def _run_turn(
        self, utterance: Utterance, marks: TurnMarks, previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await previous
        self._cancel_outcome = None
        turn_id = self._turn_id = str(uuid.uuid4())
        config, pipeline = self.config, self.pipeline
        assert pipeline is not None
        async with self._turn_scope(marks, turn_id) as turn:
            turn.transcript = await utterance.result(STT_FINAL_TIMEOUT_S)
            marks.mark("stt_final")
            if utterance.error is not None and not turn.transcript:
                turn.error = str(utterance.error)
                self.ctx.metrics.provider_errors.inc(stage="stt")
                self._send(ErrorEvent("Speech recognition failed."))
                await self._put(AssistantStart(turn_id, ""))
                turn.reply = Reply.fixed(pipeline, APOLOGY_TEXT, config.tts, marks)
                await self._deliver(turn.reply, turn_id, marks)
                await self._send_timeline(turn_id, marks)
                await self._put(AssistantEnd(turn_id, turn.outcome.value))
            elif self._is_noise(turn.transcript):
                turn.outcome = Outcome.IGNORED
            else:
                await self._put(UserFinal(turn_id, turn.transcript))
                await self._put(AssistantStart(turn_id, turn.transcript))
                await self._prepare_tools()
                turn.reply = self._reply_to(pipeline, config, turn.transcript, marks)
                await self._deliver(turn.reply, turn_id, marks)
                self._conclude(turn)
                await self._put(AssistantText(turn.reply_text, turn_id))
                await self._send_timeline(turn_id, marks)
                await self._put(AssistantEnd(turn_id, turn.outcome.value))
        if self._end_requested:  # the end_conversation tool ran
            self._end_requested = False
            self.close(CloseCode.NORMAL, "conversation ended")

    def _turn_failed(self) -> None:
        self._send(ErrorEvent("Something went wrong. Please try again."))

    async def _send_timeline(self, turn_id: str, marks: TurnMarks) -> None:
        """The turn's spans (session/timeline.py), the same ones its record keeps."""
        for span in marks.timeline():
            await self._put(span.event(turn_id))

    async def _deliver(self, reply: Reply, turn_id: str, marks: TurnMarks) -> None:
        pcm_stream = self.config.delivery == "pcm_stream"
        mp3 = self.config.encoding == "mp3"
        self._reply_texts = []
        self._gate.reset()
        async for job in reply.jobs():
            await self._put(AssistantDelta(job.text + " ", turn_id))
            self._reply_started(job.text)
            if pcm_stream:
                async for chunk in job.audio():
                    self._will_play(len(chunk.pcm) / 2 / chunk.sample_rate)
                    b64 = base64.b64encode(chunk.pcm).decode()
                    marks.mark("first_audio")
                    await self._put(AssistantPcmDelta(turn_id, job.index, chunk.sample_rate, b64))
                continue
            pcm, rate = await job.pcm()
            if not pcm:
                continue
            self._will_play(len(pcm) / 2 / rate)
            if mp3:
                audio = await asyncio.to_thread(mp3_bytes, pcm, rate)
                mime = "audio/mpeg"
            else:
                audio, mime = wav_bytes(pcm, rate), "audio/wav"
            marks.mark("first_audio")
            await self._put(
                AssistantAudio(turn_id, job.index, job.text, mime, base64.b64encode(audio).decode())
            )

    def _will_play(self, seconds: float) -> None:
        self._playing_until = max(self._loop.time(), self._playing_until) + seconds
