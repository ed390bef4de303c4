"""Endpointing: when did speech start, when did it end. A pure state machine.

Speech probabilities, one per VAD window, go in; SPEECH_START / SPEECH_END
events come out. No clock and no I/O: positions are counted in windows, so the
same probabilities always give the same events (and tests need no timing).

The rules follow Silero's own iterator, with the agent's numbers:
- start: `start_windows` consecutive windows at or above `threshold`
  (`min_speech_ms`, rounded up to whole windows, at least one);
- end: after speech, silence that lasts `hangover_windows` windows
  (the agent's `endpointing` ms, rounded up). A window counts as silence below
  `threshold - 0.15`; a window at or above `threshold` cancels a silence run;
  one in between neither starts nor cancels a run (hysteresis, so a word that
  fades out does not flap between speech and silence).

Event positions: SPEECH_START is stamped at the start of the first speech
window of the run that triggered it; SPEECH_END at the end of the last speech
window, i.e. where the silence began (not where the hangover expired).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from runtime.pipeline.interfaces import VadEvent, VadEventKind, VadOptions

HYSTERESIS = 0.15


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    window_ms: float
    threshold: float
    start_windows: int
    hangover_windows: int

    @property
    def silence_threshold(self) -> float:
        return max(self.threshold - HYSTERESIS, 0.0)

    @classmethod
    def from_options(cls, options: VadOptions, window_ms: float) -> EndpointConfig:
        return cls(
            window_ms=window_ms,
            threshold=options.threshold,
            start_windows=max(1, math.ceil(options.min_speech_ms / window_ms)),
            hangover_windows=max(1, math.ceil(options.endpointing_ms / window_ms)),
        )


class Endpointer:
    """Feed one probability per window with `push`; read events it returns."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Back to silence at position 0 (a new utterance stream)."""
        self.in_speech = False
        self._window = 0  # index of the next window
        self._run = 0  # consecutive speech windows while waiting for a start
        self._silence_from: int | None = None  # first silent window of a run, in speech
        self._start = 0  # first window of the current speech run
        self._last_voiced = 0  # last window at or above the threshold, in speech

    @property
    def speech_ms(self) -> int:
        """How long the current speech run has lasted, to its last voiced window
        (pauses inside it count, the silence after it does not); 0 outside speech."""
        if not self.in_speech:
            return 0
        return self._ms(self._last_voiced + 1 - self._start)

    def _ms(self, window_index: int) -> int:
        return round(window_index * self.config.window_ms)

    def push(self, probability: float) -> VadEvent | None:
        index = self._window
        self._window += 1
        config = self.config
        if not self.in_speech:
            self._run = self._run + 1 if probability >= config.threshold else 0
            if self._run < config.start_windows:
                return None
            self.in_speech = True
            self._silence_from = None
            start = index + 1 - self._run
            self._start, self._last_voiced = start, index
            self._run = 0
            return VadEvent(VadEventKind.SPEECH_START, self._ms(start))
        if probability >= config.threshold:
            self._silence_from = None
            self._last_voiced = index
            return None
        if self._silence_from is None:
            if probability >= config.silence_threshold:
                return None
            self._silence_from = index
        if index + 1 - self._silence_from < config.hangover_windows:
            return None
        self.in_speech = False
        end = self._silence_from
        self._silence_from = None
        return VadEvent(VadEventKind.SPEECH_END, self._ms(end))

    def push_many(self, probabilities: list[float]) -> list[VadEvent]:
        events = []
        for probability in probabilities:
            event = self.push(probability)
            if event is not None:
                events.append(event)
        return events
