"""The device session's state machine: pure, synchronous and clock-free.

Inputs are what the device said (hello, listen, abort), what the VAD or the STT
provider decided (speech start / end) and what the turn task reported (turn
finished). Outputs are actions the asyncio driver carries out. Timers (hello
timeout, idle close, the close-after-turn delay) live in the driver; the
machine only says *that* a delayed close is due and why.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from runtime.protocol.device import ListenMode


class Phase(enum.Enum):
    HANDSHAKE = "handshake"  # waiting for the device's hello
    READY = "ready"  # hello done, not listening
    LISTENING = "listening"  # collecting an utterance
    RESPONDING = "responding"  # a turn is running (STT final, LLM, TTS, playback)
    CLOSING = "closing"  # a close after the turn is scheduled


class Outcome(enum.StrEnum):
    COMPLETED = "completed"
    IGNORED = "ignored"
    ABORTED = "aborted"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


# Close reasons after a turn, as in the original runtime.
CLOSE_REASONS = {
    Outcome.COMPLETED: "turn_complete",
    Outcome.IGNORED: "ignored_transcript",
    Outcome.FAILED: "error",
}


@dataclass(frozen=True, slots=True)
class SendHello:
    pass


@dataclass(frozen=True, slots=True)
class StartListening:
    mode: ListenMode


@dataclass(frozen=True, slots=True)
class EndUtterance:
    """Finish the utterance's audio and run a turn on it."""


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Stop the running turn at once, flush queued audio, send `tts stop`."""

    outcome: Outcome


@dataclass(frozen=True, slots=True)
class CloseAfterTurn:
    reason: str


Action = SendHello | StartListening | EndUtterance | Interrupt | CloseAfterTurn


class DeviceMachine:
    def __init__(self) -> None:
        self.phase = Phase.HANDSHAKE
        self.mode = ListenMode.AUTO
        # Set by the driver: the Dot announced echo cancellation (`features.aec`) and
        # the agent allows barge-in.
        self.barge_in = False

    @property
    def accepts_audio(self) -> bool:
        """Whether uplink audio matters now (else it is dropped without decoding).
        While a reply plays, only a realtime-mode Dot that cancels its own echo is
        heard: any other would be interrupted by its own voice."""
        if self.phase is Phase.LISTENING:
            return True
        return self.phase is Phase.RESPONDING and self.hears_over_reply

    @property
    def hears_over_reply(self) -> bool:
        return self.mode is ListenMode.REALTIME and self.barge_in

    def hello(self) -> list[Action]:
        if self.phase is Phase.HANDSHAKE:
            self.phase = Phase.READY
        # A repeated hello is answered again; the firmware may retry.
        return [SendHello()]

    def listen_start(self, mode: ListenMode | None) -> list[Action]:
        if self.phase in (Phase.HANDSHAKE, Phase.CLOSING):
            return []
        self.mode = mode or self.mode
        actions: list[Action] = []
        if self.phase is Phase.RESPONDING:
            # The device went back to listening, so it is no longer playing our reply.
            actions.append(Interrupt(Outcome.INTERRUPTED))
        self.phase = Phase.LISTENING
        actions.append(StartListening(self.mode))
        return actions

    def listen_stop(self) -> list[Action]:
        if self.phase is not Phase.LISTENING:
            return []
        self.phase = Phase.RESPONDING
        return [EndUtterance()]

    def speech_start(self) -> list[Action]:
        if self.phase is Phase.RESPONDING and self.mode is ListenMode.REALTIME:
            self.phase = Phase.LISTENING
            return [Interrupt(Outcome.INTERRUPTED), StartListening(self.mode)]
        return []

    def barge_in_confirmed(self) -> list[Action]:
        """The person really interrupted the reply (the session's `BargeIn` decided):
        stop it; the interrupting speech is already the utterance being heard."""
        if self.phase is Phase.RESPONDING and self.hears_over_reply:
            self.phase = Phase.LISTENING
            return [Interrupt(Outcome.INTERRUPTED)]
        return []

    def speech_end(self) -> list[Action]:
        """End of speech from the VAD or the STT provider's own endpointing."""
        if self.phase is not Phase.LISTENING or self.mode is ListenMode.MANUAL:
            return []
        self.phase = Phase.RESPONDING
        return [EndUtterance()]

    def utterance_full(self) -> list[Action]:
        """The utterance reached the runtime's bound: it ends as a turn in every mode
        (in manual mode too, where only `listen stop` ends it otherwise)."""
        if self.phase is not Phase.LISTENING:
            return []
        self.phase = Phase.RESPONDING
        return [EndUtterance()]

    def abort(self) -> list[Action]:
        if self.phase in (Phase.HANDSHAKE, Phase.CLOSING):
            return []
        # Answered with `tts stop` even when nothing plays: the device waits for it.
        # The socket stays open: an abort comes from a wake word or a button, and the
        # device goes on listening.
        self.phase = Phase.READY
        return [Interrupt(Outcome.ABORTED)]

    def turn_finished(self, outcome: Outcome, close_after_turn: bool) -> list[Action]:
        if self.phase is not Phase.RESPONDING:
            return []  # the turn was interrupted and the machine has moved on
        reason = CLOSE_REASONS.get(outcome)
        if close_after_turn and reason is not None:
            self.phase = Phase.CLOSING
            return [CloseAfterTurn(reason)]
        # Auto and realtime devices listen again by themselves (realtime without a new
        # `listen start`); a manual device waits for its button.
        self.phase = Phase.READY if self.mode is ListenMode.MANUAL else Phase.LISTENING
        return [StartListening(self.mode)] if self.phase is Phase.LISTENING else []
