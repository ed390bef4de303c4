"""Barge-in: is the person really interrupting the reply? A pure state machine.

While a reply plays to a client that can hear the person over it (a browser,
which cancels echo; a Dot that announces echo cancellation), speech the VAD
finds becomes a *candidate*. The session keeps playing and transcribing it,
and this machine decides:

- confirm once the speech has lasted `min_ms` and its transcript so far holds
  a real word: one that is neither a backchannel ("mm-hmm", "yeah", "ok"...)
  nor part of what the reply is saying (echo the client's canceller left);
- confirm without a transcript once the speech has lasted `max_ms`: nobody
  backchannels for that long, and the STT may simply be slower;
- dismiss when the speech stops before that (a cough, a click, "mm-hmm"),
  or when it was only backchannel or echo words.

Inputs are positioned in milliseconds of the candidate's speech (the VAD's
`speech_ms`), so the same audio always gives the same decision.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

# One-word (or one-sound) acknowledgements a listener says without taking the turn.
BACKCHANNELS = frozenset(
    {
        "mm", "mmm", "hmm", "hm", "mhm", "mmhmm", "mmhm", "uhhuh", "uhuh", "aha", "ah", "oh",
        "uh", "um", "yeah", "yea", "yep", "yup", "yes", "ok", "okay", "kay", "right", "sure",
        "alright", "cool", "nice", "great", "wow", "gotcha", "i", "see", "true", "exactly",
        "huh", "ha", "haha", "so", "and", "well",
    }
)  # fmt: skip
_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-case words with hyphens joined ("Mm-hmm" -> "mmhmm", "uh-huh" -> "uhhuh")."""
    return _WORD.findall(text.lower().replace("-", ""))


class Verdict(enum.Enum):
    CONFIRM = "confirm"
    DISMISS = "dismiss"


@dataclass(frozen=True, slots=True)
class BargeInConfig:
    min_ms: int = 500  # speech needed before the reply is stopped
    max_ms: int = 1200  # speech that stops the reply even without a transcript


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str  # "words", "long_speech", "short", "backchannel", "echo"
    speech_ms: int
    text: str = ""


class BargeIn:
    """One candidate interruption. Feed it `heard` and `transcript`; read the decision."""

    def __init__(self, config: BargeInConfig, reply_text: Iterable[str] = ()) -> None:
        self.config = config
        self._echo = {w for text in reply_text for w in words(text)}
        self.text = ""
        self.speech_ms = 0
        self.stopped = False
        self.decision: Decision | None = None

    def add_reply_text(self, text: str) -> None:
        """More of what the reply says (a sentence that started since the candidate began)."""
        self._echo.update(words(text))

    def _content(self) -> list[str]:
        return [w for w in words(self.text) if w not in BACKCHANNELS and w not in self._echo]

    def _decide(self, verdict: Verdict, reason: str) -> Decision:
        self.decision = Decision(verdict, reason, self.speech_ms, self.text)
        return self.decision

    def _check(self) -> Decision | None:
        if self.speech_ms < self.config.min_ms:
            return None
        if self._content():
            return self._decide(Verdict.CONFIRM, "words")
        if self.speech_ms >= self.config.max_ms and not self.text.strip():
            return self._decide(Verdict.CONFIRM, "long_speech")
        return None

    def heard(self, speech_ms: int) -> Decision | None:
        """The candidate's speech has lasted `speech_ms` (0: it has stopped)."""
        if self.decision is not None:
            return None
        if speech_ms > 0:
            self.speech_ms = max(self.speech_ms, speech_ms)
            return self._check()
        self.stopped = True
        if self.speech_ms < self.config.min_ms:
            return self._decide(Verdict.DISMISS, "short")
        if self.text.strip():
            return self._settle()
        return None  # long enough: the final transcript decides (`final`)

    def transcript(self, text: str) -> Decision | None:
        """The candidate's transcript so far (interim)."""
        if self.decision is not None or not text.strip():
            return None
        self.text = text
        return self._settle() if self.stopped else self._check()

    def final(self, text: str) -> Decision | None:
        """The candidate's final transcript, after its speech stopped."""
        if self.decision is not None:
            return None
        self.text = text or self.text
        if not self.stopped:
            return self._check()
        return self._settle()

    def _settle(self) -> Decision:
        """Speech over, long enough: its words decide."""
        if self._content():
            return self._decide(Verdict.CONFIRM, "words")
        every = words(self.text)
        if not every:
            return self._decide(Verdict.DISMISS, "no_words")
        if all(w in BACKCHANNELS for w in every):
            return self._decide(Verdict.DISMISS, "backchannel")
        return self._decide(Verdict.DISMISS, "echo")
