"""Semantic end of turn: when a pause ends the person's turn. A pure state machine.

A fixed silence has to choose between answering late (a long silence) and
cutting people off mid-thought (a short one). Here the pause is judged
instead: when the person has been silent for `short_ms`, the driver asks the
end-of-turn model whether the utterance sounds finished; finished -> the turn
ends now, unfinished -> keep listening until `long_ms` of silence (or until
speech resumes, which makes it one utterance). A judgement that never comes
(the model refused under load, or failed) falls back to `fallback_ms`, the
agent's plain endpointing silence, so overload costs quality, never a turn.

Inputs, all positioned in milliseconds of audio (no clock, so tests need no
timing): `speech_start`, `pause` (the VAD or the STT provider saw `short_ms`
of silence that began at `at_ms`), `resume` (speech again), `advance` (audio
up to `now_ms` has been heard), `verdict` (the model's answer for a pause).
Outputs: `Judge(pause_id)` for the driver to run the model, `EndTurn(at_ms)`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TurnEndConfig:
    short_ms: int = 100  # silence before the model is asked
    long_ms: int = 1500  # silence that ends the turn whatever the model said
    threshold: float = 0.9  # P(complete) at or above which the turn ends
    fallback_ms: int = 700  # silence that ends the turn when no verdict comes


@dataclass(frozen=True, slots=True)
class Judge:
    pause_id: int
    at_ms: int  # where the silence began: the audio to judge ends here


@dataclass(frozen=True, slots=True)
class EndTurn:
    at_ms: int  # where the final silence began (the end of speech)
    reason: str  # "complete", "long_silence", "fallback"
    probability: float | None = None


Decision = Judge | EndTurn


class _State(enum.Enum):
    IDLE = "idle"  # no utterance
    SPEAKING = "speaking"
    JUDGING = "judging"  # paused, waiting for the model
    UNFINISHED = "unfinished"  # paused, the model said "not finished" (or did not answer)


class TurnEnd:
    def __init__(self, config: TurnEndConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._state = _State.IDLE
        self._pause_id = 0
        self._silence_from = 0
        self._limit_ms = 0  # silence after which the current pause ends the turn
        self.last_probability: float | None = None

    @property
    def in_utterance(self) -> bool:
        return self._state is not _State.IDLE

    @property
    def judging(self) -> bool:
        return self._state is _State.JUDGING

    def speech_start(self) -> None:
        if self._state is _State.IDLE:
            self._state = _State.SPEAKING

    def pause(self, at_ms: int) -> list[Decision]:
        """`short_ms` of silence, begun at `at_ms`: ask the model."""
        if self._state is not _State.SPEAKING:
            return []
        self._pause_id += 1
        self._silence_from = at_ms
        self._limit_ms = self.config.long_ms
        self._state = _State.JUDGING
        return [Judge(self._pause_id, at_ms)]

    def resume(self) -> None:
        """Speech again before the turn ended: the pause was inside the utterance."""
        if self._state in (_State.JUDGING, _State.UNFINISHED):
            self._state = _State.SPEAKING  # a verdict still on its way is now stale

    def verdict(self, pause_id: int, probability: float | None) -> list[Decision]:
        if self._state is not _State.JUDGING or pause_id != self._pause_id:
            return []  # stale: speech resumed, or the turn already ended
        self.last_probability = probability
        if probability is None:
            self._state = _State.UNFINISHED
            self._limit_ms = self.config.fallback_ms
            return []
        if probability >= self.config.threshold:
            return self._end("complete", probability)
        self._state = _State.UNFINISHED
        return []

    def advance(self, now_ms: int) -> list[Decision]:
        """Audio up to `now_ms` has been heard; a long enough pause ends the turn."""
        if self._state not in (_State.JUDGING, _State.UNFINISHED):
            return []
        if now_ms - self._silence_from < self._limit_ms:
            return []
        if self._state is _State.UNFINISHED and self._limit_ms == self.config.fallback_ms:
            return self._end("fallback", None)
        return self._end("long_silence", self.last_probability)

    def _end(self, reason: str, probability: float | None) -> list[Decision]:
        self._state = _State.IDLE
        return [EndTurn(self._silence_from, reason, probability)]
