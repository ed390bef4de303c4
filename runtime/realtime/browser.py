"""The speech-to-speech side of a browser's `/voice` session (the bridged path).

For browsers that cannot or should not reach the provider themselves: PCM16
16 kHz in, the same bridge as a Dot's, and out the `/voice` events the console
already handles — `vad_event` (SpeechStarted / UtteranceEnd from the provider's
turn detection), `stt_final` + `user_final` (input transcription),
`assistant_start`, `assistant_delta` per sentence of the audio transcript,
`assistant_pcm_delta` (PCM16 24 kHz, streamed as it arrives), `assistant_text`,
`timeline` and `assistant_end` (sent by the session with the turn's outcome).

A browser plays what it receives at once, so what was heard at a barge-in is
estimated as the time since the reply's first audio went out, capped by the
audio sent: `min(sent, elapsed)`.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from runtime.protocol.browser import (
    AssistantDelta,
    AssistantPcmDelta,
    AssistantStart,
    AssistantText,
    BrowserEvent,
    ErrorEvent,
    SttFinal,
    UserFinal,
    VadEvent,
)
from runtime.protocol.realtime import AudioDelta
from runtime.protocol.realtime_session import PCM_RATE
from runtime.realtime.config import RealtimeConfig
from runtime.realtime.link import RealtimeLink, RealtimeReply
from runtime.realtime.services import RealtimeServices, apology
from runtime.session.outbox import SendText
from runtime.session.turn import Reply

if TYPE_CHECKING:
    from runtime.session.browser import BrowserSession

UNAPOLOGETIC = "The voice service is unavailable right now."


class BrowserRealtime(RealtimeLink):
    def __init__(
        self, session: BrowserSession, services: RealtimeServices, config: RealtimeConfig
    ) -> None:
        super().__init__(session, services, config)
        self.session = session
        self.heard_audio = False  # audio sent since the last end of a user turn
        self._chunks = 0
        self._first_sent_at: float | None = None
        self._item: str | None = None
        self._sent_ms = 0.0

    def feed(self, pcm16k: bytes) -> None:
        self.heard_audio = True
        super().feed(pcm16k)

    def finalize(self) -> bool:
        """The microphone stopped (or `force_response`): answer what was heard, now.
        False when there is nothing to answer."""
        if self.reply is not None or not self.heard_audio or self.bridge is None:
            return False
        self.heard_audio = False
        self.bridge.commit(respond=True)
        return True

    # --- hooks ---------------------------------------------------------------------

    def _send(self, event: BrowserEvent) -> None:
        self.session.outbox.put_nowait(SendText(event.to_json()))

    def _reply_started(self, reply: RealtimeReply) -> None:
        self._chunks = 0
        self._first_sent_at = None
        self._sent_ms = 0.0
        self._send(AssistantStart(reply.turn_id, reply.transcript))

    def _audio(self, reply: RealtimeReply, event: AudioDelta) -> None:
        if self._first_sent_at is None:
            self._first_sent_at = self.session.now()
            reply.marks.mark("first_audio")
        self._item = event.item_id
        self._sent_ms += len(event.pcm) * 1000 / (2 * PCM_RATE)
        b64 = base64.b64encode(event.pcm).decode("ascii")
        self._send(AssistantPcmDelta(reply.turn_id, self._chunks, PCM_RATE, b64))
        self._chunks += 1

    def _sentence(self, reply: RealtimeReply, text: str) -> None:
        self._send(AssistantDelta(text + " ", reply.turn_id))

    def _heard(self, reply: RealtimeReply | None, transcript: str) -> None:
        self._send(SttFinal(transcript))
        if reply is not None:
            self._send(UserFinal(reply.turn_id, transcript))

    def _speech_started(self) -> None:
        self._send(VadEvent("SpeechStarted"))
        if self.playing:
            self.session.barge_in()

    def _speech_stopped(self) -> None:
        self.heard_audio = False
        self._send(VadEvent("UtteranceEnd"))
        self.session.realtime_turn()

    def _unexpected_response(self) -> None:
        self.session.realtime_turn()

    async def _finish(self, reply: RealtimeReply) -> None:
        for text in reply.sentences.finish():
            self._start(reply)
            self._sentence(reply, text)
        whole = AssistantText(reply.reply_text, reply.turn_id)
        await self.session.outbox.put(SendText(whole.to_json()))

    async def _apologise(self, reply: RealtimeReply) -> None:
        self._send(ErrorEvent(UNAPOLOGETIC))
        text, _voice = apology(self.config.language)
        tts, options = self.services.offline_voice(self.config.language)
        spoken = Reply.spoken(tts, text, options, reply.marks)
        await self.session.deliver(spoken, reply.turn_id, reply.marks)

    def _playing_item(self) -> str | None:
        return self._item if self._first_sent_at is not None else None

    def _played_ms(self, item_id: str) -> int:
        if self._first_sent_at is None:
            return 0
        elapsed = (self.session.now() - self._first_sent_at) * 1000
        return int(min(self._sent_ms, elapsed))

    def _interrupted(self) -> None:
        self._first_sent_at, self._item = None, None

    def _turn_over(self) -> None:
        self._first_sent_at, self._item = None, None
