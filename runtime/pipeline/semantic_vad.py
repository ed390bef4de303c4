"""The VAD with a semantic end of turn: Silero finds pauses, Smart Turn judges them.

`SemanticVAD` wraps the process's VAD. A session whose agent turns semantic
end of turn off gets the plain VAD stream (its fixed endpointing silence); one
that turns it on gets a `SemanticVadStream`: the inner VAD runs with the short
silence as its hangover, so its SPEECH_END means "a pause began here", which
the pure `TurnEnd` machine turns into a judgement and, later, an end of turn.

The model runs off the event loop and `feed` never waits for it: a verdict
that arrives between two feeds is delivered through the listener the session
set (`listen`), so the turn ends as soon as the model has spoken, not one
frame later. Events from `feed` and from the listener are the same kind, in
order: the session handles both with the same code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from runtime.pipeline.interfaces import (
    UPLINK_RATE,
    VAD,
    VadEvent,
    VadEventKind,
    VadOptions,
    VadStream,
)
from runtime.pipeline.smart_turn import WINDOW_SAMPLES, SmartTurn
from runtime.pipeline.turn_end import Decision, EndTurn, Judge, TurnEnd, TurnEndConfig

log = logging.getLogger(__name__)

PRE_SPEECH_MS = 500  # audio before the VAD's speech start that the model also hears
_BYTES_PER_MS = UPLINK_RATE * 2 // 1000
_MAX_AUDIO_BYTES = WINDOW_SAMPLES * 2  # the model reads the last 8 s

Listener = Callable[[list[VadEvent]], None]


class SemanticVAD:
    """A VAD provider: `inner`'s streams, judged by `judge` when the options ask for it."""

    def __init__(self, inner: VAD, judge: SmartTurn) -> None:
        self.inner = inner
        self.judge = judge
        self.name = f"{inner.name}+{judge.name}"

    def open(self, options: VadOptions) -> VadStream:
        config = options.semantic
        if config is None:
            return self.inner.open(options)
        inner = self.inner.open(replace(options, endpointing_ms=config.short_ms))
        return SemanticVadStream(inner, self.judge, config)


class SemanticVadStream:
    def __init__(self, inner: VadStream, judge: SmartTurn, config: TurnEndConfig) -> None:
        self._inner = inner
        self._judge = judge
        self.machine = TurnEnd(config)
        self._listener: Listener | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        self.reset()

    def listen(self, listener: Listener | None) -> None:
        """Where verdicts that end a turn between two feeds are delivered."""
        self._listener = listener

    @property
    def in_speech(self) -> bool:
        """Speech now (a pause inside the utterance is not)."""
        return self._inner.speech_ms > 0

    @property
    def speech_ms(self) -> int:
        return self._inner.speech_ms

    def reset(self) -> None:
        self._inner.reset()
        self.machine.reset()
        self._audio = bytearray()
        self._fed_bytes = 0
        self._late: list[VadEvent] = []
        self._cancel_judgements()

    def close(self) -> None:
        self.closed = True
        self._listener = None  # the session's callback: no cycle outlives the session
        self._inner.close()
        self._audio.clear()
        self._cancel_judgements()

    def _cancel_judgements(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    def _now_ms(self) -> int:
        return self._fed_bytes // _BYTES_PER_MS

    async def feed(self, pcm16: bytes) -> list[VadEvent]:
        if self.closed:
            return []
        self._fed_bytes += len(pcm16)
        self._keep(pcm16)
        out, self._late = self._late, []
        machine = self.machine
        for event in await self._inner.feed(pcm16):
            if event.kind is VadEventKind.SPEECH_START:
                if machine.in_utterance:
                    machine.resume()  # a pause inside the utterance: not a new one
                else:
                    machine.speech_start()
                    out.append(event)
            else:
                out += self._decide(machine.pause(event.at_ms))
        out += self._decide(machine.advance(self._now_ms()))
        return out

    def _keep(self, pcm16: bytes) -> None:
        """The current utterance's audio (the last 8 s), or the pre-speech while idle."""
        audio = self._audio
        audio += pcm16
        limit = _MAX_AUDIO_BYTES if self.machine.in_utterance else PRE_SPEECH_MS * _BYTES_PER_MS
        if len(audio) > limit:
            del audio[: len(audio) - limit]

    def _decide(self, decisions: list[Decision]) -> list[VadEvent]:
        events: list[VadEvent] = []
        for decision in decisions:
            if isinstance(decision, Judge):
                samples = np.frombuffer(bytes(self._audio), dtype="<i2").astype(np.float32)
                task = asyncio.create_task(self._judgement(decision, samples / 32768.0))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif isinstance(decision, EndTurn):
                self._audio.clear()
                events.append(
                    VadEvent(
                        VadEventKind.SPEECH_END,
                        decision.at_ms,
                        decision.reason,
                        decision.probability,
                    )
                )
        return events

    async def _judgement(self, judge: Judge, audio: np.ndarray) -> None:
        probability: float | None
        try:
            probability = await self._judge.judge(audio)
        except asyncio.CancelledError:
            raise
        except Exception:  # a model failure costs this pause its judgement, nothing more
            log.exception("end-of-turn model failed")
            probability = None
        if self.closed:
            return
        events = self._decide(self.machine.verdict(judge.pause_id, probability))
        if not events:
            return
        if self._listener is None:
            self._late += events  # the next feed returns them
            return
        try:
            self._listener(events)
        except Exception:  # the session's bug must not be lost in a task nobody awaits
            log.exception("end-of-turn listener failed")
