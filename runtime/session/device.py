"""A Dot device's session on `/ws`: the asyncio driver around `DeviceMachine`.

The receive loop parses frames (Sans-I/O protocol core), feeds the machine and
carries out its actions; audio is decoded only while it matters. A turn runs
in its own task (STT final -> LLM -> TTS -> Opus -> paced outbox), so the
receive loop keeps reading `abort` and barge-in audio while the reply plays.
Every failure stays inside this session: provider errors become an apology or
an alert, protocol errors an event, a bug in a turn a failed turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from time import monotonic
from typing import TYPE_CHECKING, Any

from runtime.api_client import ApiError, DeviceGrant
from runtime.audio.errors import AudioError
from runtime.audio.opus import OpusDecoder, OpusEncoder, PcmFramer
from runtime.audio.resample import StreamResampler
from runtime.pipeline.interfaces import Transcript, VadEvent, VadEventKind
from runtime.protocol import mcp
from runtime.protocol.device import (
    Abort,
    Alert,
    Hello,
    Listen,
    ListenMode,
    ListenState,
    Llm,
    Mcp,
    McpOut,
    ServerHello,
    Stt,
    Tts,
    parse_device_message,
)
from runtime.protocol.emotions import detect_emotion
from runtime.protocol.errors import CloseCode, ProtocolError
from runtime.protocol.framing import Frame, FrameKind, framing_for, negotiate_version
from runtime.realtime.config import RealtimeConfig, is_speech_to_speech
from runtime.realtime.device import DeviceRealtime
from runtime.session.agent import turn_config
from runtime.session.base import STT_FINAL_TIMEOUT_S, TurnState, VoiceSession
from runtime.session.context import RuntimeContext
from runtime.session.machine import (
    Action,
    CloseAfterTurn,
    DeviceMachine,
    EndUtterance,
    Interrupt,
    Outcome,
    Phase,
    SendHello,
    StartListening,
)
from runtime.session.memory import ConversationMemory, PendingTurn
from runtime.session.outbox import Flush, Outbox, Pacer, SendAudio, SendText, Urgent
from runtime.session.socket import ARRIVED, AsgiSocket
from runtime.session.turn import APOLOGY_TEXT, Reply, TurnMarks, Utterance
from runtime.tools import vision
from runtime.tools.device import DeviceMcp
from shared.tools_config import normalize_tools

if TYPE_CHECKING:
    from runtime.realtime.link import RealtimeReply

log = logging.getLogger("opendot.runtime.device")

DOWNLINK_RATE = 24_000
FRAME_MS = 60
PREROLL_FRAMES = 5  # audio kept from before the VAD's speech start (300 ms)
# How long a turn waits for the Dot's first tool list (a cached list is there at once).
TOOLS_READY_WAIT_S = 2.0


class DeviceSession(VoiceSession):
    kind = "device"
    device_uuid: str

    def __init__(
        self,
        ctx: RuntimeContext,
        socket: AsgiSocket,
        grant: DeviceGrant,
        *,
        protocol_header: str | None,
    ) -> None:
        settings = ctx.settings
        memory = ConversationMemory.from_messages(
            grant.memory, settings.memory_max_turns, settings.memory_max_tokens
        )
        ctx.pending.merge_into(grant.device_uuid, memory, read_at=grant.requested_at)
        self._pacer = Pacer(FRAME_MS / 1000, settings.downlink_prebuffer_frames)
        outbox = Outbox(
            socket,
            pacer=self._pacer,
            max_stream=64,
            on_audio_sent=self._audio_sent,
        )
        super().__init__(
            ctx, socket, outbox, user_id=grant.user_id, agent=grant.agent, memory=memory
        )
        self.grant = grant
        self.device_uuid = grant.device_uuid
        self._protocol_header = protocol_header
        self.framing = framing_for(negotiate_version(protocol_header), settings.max_frame_bytes)
        self.machine = DeviceMachine()
        self._agent_stale = True
        self._decoder: OpusDecoder | None = None
        self._preroll: deque[bytes] = deque(maxlen=PREROLL_FRAMES)
        self._marks: TurnMarks | None = None
        self._realtime: DeviceRealtime | None = None
        self._aec = False  # the Dot cancels its own echo (hello features.aec)
        self._s2s_off = False  # fell back to the pipeline after a provider failure
        self._fresh_provider = False  # the memory was reset: the next turn starts a new session
        self._mcp: DeviceMcp | None = None
        self.timezone = grant.timezone
        self.facts = list(grant.facts)
        self.user_secrets = grant.secrets

    # --- LiveSession -----------------------------------------------------------------

    def forget_memory(self) -> None:
        """A memory reset: the provider keeps its own copy of the conversation, so the next
        listen opens a fresh provider session (with nothing to replay)."""
        self.memory.clear()
        if self._realtime is not None:
            self._fresh_provider = True
            self._agent_stale = True

    def update_agent(self, agent: Mapping[str, Any] | None) -> None:
        """A new configuration for the device; the next turn uses it."""
        self.agent = agent
        self._agent_stale = True
        if not self.busy and self._utterance is None:
            self._refresh_pipeline()

    # --- lifecycle -----------------------------------------------------------------

    def _on_start(self) -> None:
        replaced = self.ctx.registry.claim_device(self.device_uuid, self)
        if replaced is not None:
            replaced.close(CloseCode.NORMAL, "Replaced by a new device connection")

    def _protocol_version(self) -> int:
        return self.framing.version

    async def _serve(self) -> str:
        if not await self._handshake():
            return "hello timeout"
        return await self._receive_loop()

    async def _handshake(self) -> bool:
        deadline = self._loop.time() + self.ctx.settings.hello_timeout_s
        while True:
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                self.close(CloseCode.NORMAL, "hello timeout")
                return False
            try:
                message = await asyncio.wait_for(self.socket.receive(), timeout=remaining)
            except TimeoutError:
                continue
            if message["type"] == "websocket.disconnect":
                return False
            self.last_input = self._loop.time()
            text = message.get("text")
            if text is None:
                continue  # audio before the hello means nothing yet
            parsed = parse_device_message(text)
            if isinstance(parsed, ProtocolError):
                self._note_protocol_error(parsed)
                if parsed.fatal:
                    return False
                continue
            if isinstance(parsed, Hello):
                await self._on_message(parsed)
                return True
            log.debug("device sent %s before hello; ignored", type(parsed).__name__)

    async def _receive_loop(self) -> str:
        receive = self.socket.receive
        metrics = self.ctx.metrics
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return "closed" if self.closing else f"disconnected ({message.get('code')})"
            self.last_input = self._loop.time()
            data = message.get("bytes")
            if data is not None:
                frame = self.framing.parse(data)
                if isinstance(frame, ProtocolError):
                    self._note_protocol_error(frame)
                elif frame.kind is FrameKind.AUDIO:
                    arrived = message.get(ARRIVED) or monotonic()
                    await self._on_audio(frame.payload)
                    metrics.frame_lag.observe(monotonic() - arrived)
                else:
                    await self._on_text(frame.payload.decode("utf-8", "replace"))
            elif message.get("text") is not None:
                await self._on_text(message["text"])

    def _on_end(self, still_current: bool) -> None:
        if self._realtime is not None:
            self.ctx.spawn(self._realtime.close(), name="realtime-close")
            self._realtime = None
        if self._mcp is not None:
            self._mcp.close()
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None
        if still_current and self.device_uuid:
            self.ctx.spawn(self._report_offline(), name="device-offline")

    async def _report_offline(self) -> None:
        for attempt in range(4):
            if self.ctx.registry.devices.get(self.device_uuid) is not None:
                return  # the device reconnected meanwhile
            try:
                await self.ctx.api.device_state(self.device_uuid, "offline")
                return
            except ApiError as exc:
                self.ctx.metrics.api_errors.inc(endpoint="device_state")
                log.info("offline state not recorded yet: %s", exc)
                await asyncio.sleep(0.5 * 2**attempt)

    # --- inbound -------------------------------------------------------------------

    async def _on_text(self, text: str) -> None:
        parsed = parse_device_message(text)
        if isinstance(parsed, ProtocolError):
            self._note_protocol_error(parsed)
            return
        await self._on_message(parsed)

    async def _on_message(self, message: object) -> None:
        if isinstance(message, Hello):
            version = negotiate_version(self._protocol_header, message.version)
            if version != self.framing.version:
                self.framing = framing_for(version, self.ctx.settings.max_frame_bytes)
            self._aec = message.aec
            self.machine.barge_in = self._aec and self.config.barge_in
            self._apply(self.machine.hello())
            if message.mcp and self._mcp is None:
                self._start_mcp()  # first: a cached tool list is then offered to the bridge
            if self._speech_to_speech():
                self._refresh_pipeline()  # connect now: the person speaks right after the hello
        elif isinstance(message, Listen):
            if message.state is ListenState.START:
                self._apply(self.machine.listen_start(message.mode))
            elif message.state is ListenState.STOP:
                self._apply(self.machine.listen_stop())
            else:
                # Wake word: its audio came before and is dropped; nothing to do.
                self._event("wake_word", {"text": message.text or ""})
        elif isinstance(message, Abort):
            self._event("abort", {"reason": message.reason or ""})
            self._apply(self.machine.abort())
        elif isinstance(message, Mcp):
            if self._mcp is not None:
                self._mcp.on_payload(message.payload)
            else:
                self._event("mcp", {"payload": message.payload})

    async def _on_audio(self, payload: bytes) -> None:
        self.ctx.metrics.frames_in.inc(kind="device")
        machine = self.machine
        link = self._realtime
        if link is not None:
            # The provider decides when speech ends: it hears everything until the reply plays.
            if machine.accepts_audio or (machine.phase is Phase.RESPONDING and not link.playing):
                pcm = self._decode(payload)
                if pcm is not None:
                    link.feed(pcm)
            return
        if not machine.accepts_audio or self.pipeline is None:
            return
        pcm = self._decode(payload)
        if pcm is None:
            return
        if self._vad is None or machine.mode is ListenMode.MANUAL:
            self._feed(pcm)
            return
        self._on_vad_events(await self._vad.feed(pcm), pcm)

    def _on_late_vad_events(self, events: list[VadEvent]) -> None:
        """Events the VAD decided between two frames (a judged pause that ended a turn)."""
        if self._vad is not None and self.machine.mode is not ListenMode.MANUAL:
            self._on_vad_events(events, None)

    def _on_vad_events(self, events: list[VadEvent], pcm: bytes | None) -> None:
        machine = self.machine
        if machine.phase is Phase.RESPONDING:
            # Only a Dot that hears the person over its reply gets here (accepts_audio).
            if pcm is not None:
                self._preroll.append(pcm)
                self._reply_frame(pcm, list(self._preroll))
            return
        fed = pcm is None
        for event in events:
            if event.kind is VadEventKind.SPEECH_START:
                self._apply(machine.speech_start())
                if self._utterance is None and machine.phase is Phase.LISTENING:
                    self._utterance = self._new_utterance()
                    for earlier in self._preroll:
                        self._utterance.feed(earlier)
                    self._preroll.clear()
            elif event.kind is VadEventKind.SPEECH_END and self._utterance is not None:
                if pcm is not None:
                    self._feed(pcm)
                    fed = True
                self._note_end_of_turn(event)
                self._apply(machine.speech_end())
        if not fed and pcm is not None:
            if self._utterance is not None:
                self._feed(pcm)
            elif machine.phase is Phase.LISTENING:
                self._preroll.append(pcm)

    def _decode(self, payload: bytes) -> bytes | None:
        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = OpusDecoder(16_000)
        try:
            return decoder.decode(payload)
        except AudioError as exc:
            self._note_protocol_error(ProtocolError(f"undecodable audio frame: {exc}"))
            return None

    # --- the Dot's tools (MCP) ---------------------------------------------------------

    def _start_mcp(self) -> None:
        device = normalize_tools((self.agent or {}).get("tools"))["device"]
        if not device["enabled"]:
            return
        sid = self.session_id
        outbox = self.outbox

        def send(payload: dict[str, Any]) -> None:
            outbox.control(Urgent(McpOut(payload).to_json(sid)))

        self._mcp = DeviceMcp(
            send,
            device_uuid=self.device_uuid,
            firmware_version=str(self.grant.device.get("firmwareVersion") or ""),
            cache=self.ctx.device_tools,
            allow_user_only=device["allowUserOnly"],
            deny=device["deny"],
            vision=self._vision_capability,
            on_event=lambda kind, payload: self._event(kind, payload, self._current_turn),
        )
        self._mcp.start()

    def _vision_capability(self) -> mcp.Vision | None:
        """Where the camera posts its photo, with a fresh short-lived token (vision on only)."""
        if not normalize_tools((self.agent or {}).get("tools"))["vision"]["enabled"]:
            return None
        settings = self.ctx.settings
        if settings.public_http_url:
            base = settings.public_http_url.rstrip("/")
        else:
            # The address the Dot reached us on; behind TLS the forwarded scheme applies.
            secure = self.socket.scope.get("scheme") in ("wss", "https")
            host = self.socket.header("host") or "127.0.0.1"
            base = f"{'https' if secure else 'http'}://{host}"
        secret = settings.runtime_internal_secret.get_secret_value()
        token = vision.mint_token(secret, self.device_uuid, self.session_id)
        return mcp.Vision(base + vision.PATH, token)

    def _device_mcp(self) -> DeviceMcp | None:
        return self._mcp

    def _fact_changer(self) -> Any:
        api, device = self.ctx.api, self.device_uuid

        async def change(remember: str | None, forget: str | None) -> list[str]:
            self.facts = await api.memory_facts(device, remember=remember, forget=forget)
            return self.facts

        return change

    def _status(self) -> dict[str, Any]:
        device = self.grant.device
        return {
            "connected": True,
            "name": device.get("name"),
            "firmwareVersion": device.get("firmwareVersion"),
            "board": device.get("board"),
            "protocolVersion": self.framing.version,
        }

    # --- actions -------------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendHello):
                hello = ServerHello(version=self.framing.version)
                # Urgent, like the MCP requests that follow it: they must not overtake it.
                self.outbox.control(Urgent(hello.to_json(self.session_id)))
            elif isinstance(action, StartListening):
                self._start_listening(action.mode)
            elif isinstance(action, EndUtterance):
                self._end_utterance()
            elif isinstance(action, Interrupt):
                self._interrupt(action.outcome)
            elif isinstance(action, CloseAfterTurn):  # pragma: no cover - handled by the turn
                self.close(CloseCode.NORMAL, action.reason)

    def _speech_to_speech(self) -> bool:
        return not self._s2s_off and is_speech_to_speech(self.agent)

    def _refresh_pipeline(self) -> None:
        self.config = turn_config(self.agent, self.ctx.settings)
        self.machine.barge_in = self._aec and self.config.barge_in
        if self._speech_to_speech():
            self._refresh_realtime()
            return
        if self._realtime is not None:
            self.ctx.spawn(self._realtime.close(), name="realtime-close")
            self._realtime = None
        try:
            pipeline = self.ctx.pipelines(self.agent, self.grant.secrets, self.grant.user_id)
        except Exception as exc:
            log.warning("device %s: no pipeline for its agent: %s", self.device_uuid, exc)
            self._event("pipeline_error", {"message": str(exc)})
            if self.pipeline is None:
                self._alert("The voice pipeline could not start.")
            return
        if self._vad is not None:
            self._vad.close()
        self.pipeline = pipeline
        self._vad = pipeline.vad.open(self.config.vad) if pipeline.vad is not None else None
        if self._vad is not None:
            self._vad.listen(self._on_late_vad_events)
        self._agent_stale = False

    def _refresh_realtime(self) -> None:
        """A fresh link for a new agent, or after a failure when the provider may be tried."""
        self._agent_stale = False
        link = self._realtime
        fresh, self._fresh_provider = self._fresh_provider, False
        if (
            link is not None
            and link.failed is None
            and not fresh
            and link.config == self._realtime_config()
        ):
            return
        config = self._realtime_config()
        services = self.ctx.realtime
        if link is not None:
            if link.failed is not None and not services.breaker.allows(self.device_uuid):
                return  # keep the failed link: no new connect (and apology) per listen
            self.ctx.spawn(link.close(), name="realtime-close")
        elif config.falls_back_to_pipeline and not services.breaker.allows(self.device_uuid):
            self.fall_back_to_pipeline()  # the provider failed for this device recently
            self._refresh_pipeline()
            return
        self._realtime = DeviceRealtime(self, services, config)
        self._realtime.tools = self.toolbox()  # the same executor as the pipeline's tool loop
        if link is not None:
            self._realtime.apologised = link.apologised
            self._realtime.manual = link.manual
        self._realtime.start()

    def _realtime_config(self) -> RealtimeConfig:
        return RealtimeConfig.from_agent(self.agent)

    def _start_listening(self, mode: ListenMode) -> None:
        if self._agent_stale or (self.pipeline is None and self._realtime is None):
            self._refresh_pipeline()
        if self._realtime is not None:
            if self._realtime.failed is not None:
                self._refresh_realtime()
            if self._realtime is not None:
                self._realtime.listening(mode)
                if self._realtime.failed is not None and not self._realtime.apologised:
                    self.realtime_failed()  # it failed before the device listened: say so now
                return
        candidate = self._candidate
        if self._barge is not None and self._barge.stopped:
            self._drop_candidate()  # undecided, and over: a sound, not a turn
            candidate = None
        if candidate is not None and self._utterance is None:
            # The reply ended while the person was talking over it: that is the utterance.
            self._candidate, self._barge = None, None
            candidate.on_transcript = self._on_transcript
            self._utterance = candidate
            self._preroll.clear()
            return
        if self._utterance is not None:
            self.ctx.spawn(self._utterance.cancel(), name="stt-cancel")
            self._utterance = None
        self._preroll.clear()
        if self._vad is not None:
            self._vad.reset()
        if self.pipeline is not None and (mode is ListenMode.MANUAL or self._vad is None):
            self._utterance = self._new_utterance()

    def _on_transcript(self, transcript: Transcript) -> None:
        if not transcript.is_final and transcript.text.strip():
            # Live text while the person speaks (the firmware shows it as theirs).
            self.outbox.put_nowait(SendText(Stt(transcript.text).to_json(self.session_id)))
        if transcript.speech_final and self._vad is None:
            self._apply(self.machine.speech_end())

    def _utterance_full(self) -> None:
        self._apply(self.machine.utterance_full())

    def _barged_in(self, utterance: Utterance) -> None:
        self._apply(self.machine.barge_in_confirmed())  # flush + `tts stop`, turn cancelled
        self._utterance = utterance
        self._preroll.clear()
        if utterance.ended:  # its speech had already stopped: answer it now
            self._apply(self.machine.speech_end())

    def _end_utterance(self) -> None:
        utterance, self._utterance = self._utterance, None
        self._preroll.clear()
        marks = TurnMarks(utterance.served if utterance is not None else None)
        marks.mark("speech_end")
        # A reply cut by a barge-in may still be winding down: the new turn waits for it.
        previous = self._turn if self.busy else None
        if previous is not None and self._realtime is not None:  # pragma: no cover
            return
        self._cancel_outcome = None
        if self._realtime is not None:
            reply = self._realtime.begin_turn(marks)
            self._turn = asyncio.create_task(
                self._run_realtime_turn(self._realtime, reply, marks), name="device-turn"
            )
            return
        self._turn = asyncio.create_task(
            self._run_turn(utterance, marks, previous), name="device-turn"
        )

    def _interrupt(self, outcome: Outcome) -> None:
        if self._realtime is not None:
            self._realtime.interrupt(outcome)  # before the flush: it reads what was played
        if self.busy and self._turn is not None:
            self._cancel_outcome = outcome
            self._turn.cancel()
        if outcome is Outcome.ABORTED:
            self._drop_candidate()
            if self._utterance is not None:
                self.ctx.spawn(self._utterance.cancel(), name="stt-cancel")
                self._utterance = None
        self.outbox.control(Flush(then=(Tts.stop().to_json(self.session_id),)))

    def _alert(self, message: str) -> None:
        alert = Alert(status="Error", message=message, emotion="sad")
        self.outbox.put_nowait(SendText(alert.to_json(self.session_id)))

    def _audio_sent(self) -> None:
        self.ctx.metrics.frames_out.inc()
        if self._realtime is not None:
            self._realtime.frame_sent()
        marks = self._marks
        if marks is not None and "first_audio" not in marks.values:
            marks.mark("first_audio")

    # --- the turn ------------------------------------------------------------------

    async def _run_turn(
        self,
        utterance: Utterance | None,
        marks: TurnMarks,
        previous: asyncio.Task[None] | None = None,
    ) -> None:
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await previous
        config, pipeline = self.config, self.pipeline
        self._marks = marks
        async with self._turn_scope(marks) as turn:
            if utterance is not None:
                turn.transcript = await utterance.result(STT_FINAL_TIMEOUT_S)
            marks.mark("stt_final")
            stt_error = utterance.error if utterance is not None else None
            if pipeline is None:
                turn.error = "no pipeline"
            elif stt_error is not None and not turn.transcript:
                turn.error = str(stt_error)
                self.ctx.metrics.provider_errors.inc(stage="stt")
                turn.reply = Reply.fixed(pipeline, APOLOGY_TEXT, config.tts, marks)
                await self._play(turn.reply)
            elif self._is_noise(turn.transcript):
                turn.outcome = Outcome.IGNORED
            else:
                sid = self.session_id
                await self.outbox.put(SendText(Stt(turn.transcript).to_json(sid)))
                if self._mcp is not None and not self._mcp.ready.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._mcp.ready.wait(), TOOLS_READY_WAIT_S)
                if self._mcp is not None and turn.index > 0:
                    # A socket kept open across turns: hand the camera a fresh token.
                    self._mcp.refresh_vision()
                await self._prepare_tools()
                turn.reply = self._reply_to(pipeline, config, turn.transcript, marks)
                await self._play(turn.reply)
                self._conclude(turn)
        await self._after_turn(turn)

    async def _after_turn(self, turn: TurnState) -> None:
        config = self.config
        # The end_conversation tool closes the socket as close-after-turn does.
        ending, self._end_requested = self._end_requested, False
        close_after = config.close_after_turn or ending
        for action in self.machine.turn_finished(turn.outcome, close_after):
            if isinstance(action, CloseAfterTurn):
                await asyncio.sleep(config.close_delay_ms / 1000)
                self.close(CloseCode.NORMAL, "conversation ended" if ending else action.reason)
            else:
                self._apply([action])

    async def _run_realtime_turn(
        self, link: DeviceRealtime, reply: RealtimeReply, marks: TurnMarks
    ) -> None:
        self._marks = marks
        async with self._turn_scope(marks, reply.turn_id) as turn:
            await link.run(reply, turn)
        await self._after_turn(turn)

    # --- what the speech-to-speech link uses ------------------------------------------

    @property
    def secrets(self) -> Mapping[str, str]:
        return self.grant.secrets

    @property
    def breaker_key(self) -> str:
        return self.device_uuid

    def unplayed_s(self) -> float:
        """Audio sent to the device that it has not played yet (the pacer's model)."""
        return self._pacer.drained_in(self._loop.time())

    def apply_machine(self, actions: list[Action]) -> None:
        self._apply(actions)

    async def play(self, reply: Reply) -> None:
        await self._play(reply)

    def realtime_failed(self) -> None:
        """The provider failed between turns: a listening device gets its apology now."""
        if self.machine.phase is Phase.LISTENING and not self.busy:
            self._apply(self.machine.speech_end())

    def fall_back_to_pipeline(self) -> None:
        """Later turns of this session run on the agent's pipeline stages."""
        self._s2s_off = True
        self._agent_stale = True

    def _turn_failed(self) -> None:
        self._alert("Something went wrong. Please try again.")

    def _turn_ended(self, turn: TurnState) -> None:
        self._marks = None
        if turn.outcome is Outcome.COMPLETED and self.device_uuid:
            # Remembered until the API confirms it, for a reconnect that comes first.
            self.ctx.pending.add(
                self.device_uuid, PendingTurn(turn.turn_id, turn.transcript, turn.reply_text)
            )

    async def _play(self, reply: Reply) -> None:
        """Speak a reply's jobs in order: Opus 24 kHz / 60 ms through the paced outbox."""
        sid = self.session_id
        put = self.outbox.put
        serialize = self.framing.serialize
        encoder = OpusEncoder(DOWNLINK_RATE, FRAME_MS, self.ctx.settings.opus_complexity)
        framer = PcmFramer(DOWNLINK_RATE, FRAME_MS)
        started = False
        spoke = False
        self._reply_texts = []
        self._gate.reset()
        try:
            async for job in reply.jobs():
                if not started:
                    started = True
                    emotion = detect_emotion(job.text) or "happy"
                    await put(SendText(Llm(emotion).to_json(sid)))
                    await put(SendText(Tts.start().to_json(sid)))
                await put(SendText(Tts.sentence_start(job.text).to_json(sid)))
                self._reply_started(job.text)
                resampler: StreamResampler | None = None
                async for chunk in job.audio():
                    pcm = chunk.pcm
                    if chunk.sample_rate != DOWNLINK_RATE:
                        if resampler is None:
                            resampler = StreamResampler(chunk.sample_rate, DOWNLINK_RATE)
                        pcm = resampler.process(pcm)
                    for frame in framer.push(pcm):
                        packet = encoder.encode(frame)
                        await put(SendAudio(serialize(Frame(FrameKind.AUDIO, packet))))
                        spoke = True
                tail = framer.push(resampler.flush()) if resampler is not None else []
                # Pad each chunk's last frame so the next sentence starts on its own packet.
                for frame in tail + framer.flush(pad=True):
                    await put(SendAudio(serialize(Frame(FrameKind.AUDIO, encoder.encode(frame)))))
                    spoke = True
            if started:
                await put(SendText(Tts.stop().to_json(sid)))
            if not spoke:
                self._alert("I could not speak the answer.")
            await self.outbox.drained()
        finally:
            encoder.close()
