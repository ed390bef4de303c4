"""Which provider served each stage of a turn, and the fallbacks on the way.

A stage with fallbacks (`runtime/pipeline/fallback.py`) decides per call which
provider serves it; the turn that made the call is several tasks away (the STT
task of the utterance, the LLM producer, one task per synthesised sentence). So
the turn's `Served` travels in a context variable: the session binds it where a
turn's tasks start, every task created there inherits it, and the fallback
wrappers report into it. Nothing bound (a bench, a unit test) means nothing is
reported, and nothing breaks.

The records and the console read it: each span names its provider, and each
fallback becomes a `provider_fallback` event ("STT fell back to local-whisper:
deepgram timed out").
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Final

STAGES: Final = ("stt", "llm", "tts")


@dataclass(frozen=True, slots=True)
class Fallback:
    stage: str
    failed: str  # the provider that failed before any output
    to: str  # the provider tried next
    reason: str


@dataclass(slots=True)
class Served:
    providers: dict[str, str] = field(default_factory=dict)  # stage -> the provider that served
    fallbacks: list[Fallback] = field(default_factory=list)

    def served(self, stage: str, provider: str) -> None:
        self.providers.setdefault(stage, provider)  # a turn's first answer names the stage

    def fell_back(self, stage: str, failed: str, to: str, reason: str) -> None:
        if len(self.fallbacks) < 16:  # one per sentence at most; a record stays small
            self.fallbacks.append(Fallback(stage, failed, to, reason[:300]))


_current: contextvars.ContextVar[Served | None] = contextvars.ContextVar(
    "opendot_served", default=None
)


def bind(served: Served) -> None:
    """Report this task's (and its future child tasks') stages into `served`."""
    _current.set(served)


def context_for(served: Served) -> contextvars.Context:
    """A copy of the current context with `served` bound, for `create_task(context=…)`."""
    ctx = contextvars.copy_context()
    ctx.run(_current.set, served)
    return ctx


def report_served(stage: str, provider: str) -> None:
    served = _current.get()
    if served is not None:
        served.served(stage, provider)


def report_fallback(stage: str, failed: str, to: str, reason: str) -> None:
    served = _current.get()
    if served is not None:
        served.fell_back(stage, failed, to, reason)
