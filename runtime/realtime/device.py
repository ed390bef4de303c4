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
- A provider failure becomes a spoken apology from the offline voice in the
  agent's language (see `link.RealtimeLink` for the rest).

Turn marks: speech_end (provider's speech stop, or `listen stop`), stt_final
(input transcription), llm_first_token (first transcript delta), first_chunk
(first provider audio delta), first_audio (first Opus packet on the device
socket). first_audio - first_chunk is the bridge's own latency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.audio.opus import OpusEncoder, PcmFramer
from runtime.protocol.device import ListenMode, Llm, Stt, Tts
from runtime.protocol.emotions import detect_emotion
from runtime.protocol.framing import Frame, FrameKind
from runtime.protocol.realtime import AudioDelta
from runtime.realtime.config import RealtimeConfig
from runtime.realtime.link import RealtimeLink, RealtimeReply
from runtime.realtime.playback import PlaybackLedger
from runtime.realtime.services import RealtimeServices, apology
from runtime.session.machine import Phase
from runtime.session.outbox import Flush, SendAudio, SendText
from runtime.session.turn import Reply

if TYPE_CHECKING:
    from runtime.session.device import DeviceSession

DOWNLINK_RATE = 24_000
FRAME_MS = 60


class DeviceRealtime(RealtimeLink):
    def __init__(
        self, session: DeviceSession, services: RealtimeServices, config: RealtimeConfig
    ) -> None:
        super().__init__(session, services, config)
        self.session = session
        self.ledger = PlaybackLedger(FRAME_MS)
        self._encoder: OpusEncoder | None = None
        self._framer = PcmFramer(DOWNLINK_RATE, FRAME_MS)

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

    def frame_sent(self) -> None:
        self.ledger.sent()

    # --- hooks ---------------------------------------------------------------------

    def _send_text(self, text: str) -> None:
        self.session.outbox.put_nowait(SendText(text))

    def _reply_started(self, reply: RealtimeReply) -> None:
        sid = self.session.session_id
        emotion = detect_emotion(reply.reply_text) or "happy"
        self._send_text(Llm(emotion).to_json(sid))
        self._send_text(Tts.start().to_json(sid))

    def _audio(self, reply: RealtimeReply, event: AudioDelta) -> None:
        for frame in self._framer.push(event.pcm):
            self._queue_frame(frame, event.item_id)

    def _queue_frame(self, pcm: bytes, item_id: str) -> None:
        s = self.session
        if self._encoder is None:
            self._encoder = OpusEncoder(DOWNLINK_RATE, FRAME_MS, s.ctx.settings.opus_complexity)
        packet = self._encoder.encode(pcm)
        s.outbox.put_nowait(SendAudio(s.framing.serialize(Frame(FrameKind.AUDIO, packet))))
        self.ledger.queued(item_id)

    def _sentence(self, reply: RealtimeReply, text: str) -> None:
        self._send_text(Tts.sentence_start(text).to_json(self.session.session_id))

    def _heard(self, reply: RealtimeReply | None, transcript: str) -> None:
        self._send_text(Stt(transcript).to_json(self.session.session_id))

    def _speech_started(self) -> None:
        s = self.session
        s.apply_machine(s.machine.speech_start())

    def _speech_stopped(self) -> None:
        s = self.session
        s.apply_machine(s.machine.speech_end())

    def _unexpected_response(self) -> None:
        s = self.session
        if s.machine.phase is Phase.LISTENING:
            # An answer without a speech stop we saw (semantic VAD, a late event): that
            # ends the user's turn too.
            s.apply_machine(s.machine.speech_end())

    async def _finish(self, reply: RealtimeReply) -> None:
        s = self.session
        for text in reply.sentences.finish():
            self._start(reply)
            self._sentence(reply, text)
        if reply.started:
            for frame in self._framer.flush(pad=True):
                self._queue_frame(frame, self.ledger.playing() or "")
            await s.outbox.put(SendText(Tts.stop().to_json(s.session_id)))
            await s.outbox.drained()

    async def _apologise(self, reply: RealtimeReply) -> None:
        s = self.session
        if reply.started:  # cut the partial answer first
            s.outbox.control(Flush(then=(Tts.stop().to_json(s.session_id),)))
            self._interrupted()
        text, _voice = apology(self.config.language)
        tts, options = self.services.offline_voice(self.config.language)
        await s.play(Reply.spoken(tts, text, options, reply.marks))

    def _playing_item(self) -> str | None:
        return self.ledger.playing()

    def _played_ms(self, item_id: str) -> int:
        return self.ledger.played_ms(item_id, self.session.unplayed_s() * 1000)

    def _interrupted(self) -> None:
        self.ledger.reset()
        self._framer.reset()

    def _turn_over(self) -> None:
        self.ledger.reset()
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None
        self._framer.reset()

    def _closed(self) -> None:
        self._turn_over()
