"""Barge-in: is the person really interrupting the reply? A pure state machine.

While a reply plays to a client that can hear the person over it (a browser,
which cancels echo; a Dot that announces echo cancellation), speech the VAD
finds becomes a *candidate*. The session keeps playing and transcribing it,
and this machine decides:

- confirm once the speech has lasted `min_ms` and its transcript so far holds
  a real word: one that is neither a backchannel ("mm-hmm", "yeah", "ok"...)
  nor part of what the reply is saying (echo the client's canceller left);
- confirm without a transcript once the speech has lasted `max_ms` and the
  STT has not answered at all: nobody backchannels for that long, and the STT
  may simply be slower (an STT that answered "nothing" heard no words);
- dismiss when the speech stops before that (a cough, a click, "mm-hmm"),
  or when it was only backchannel or echo words;
- a candidate only begins when speech stands above the echo: `EchoGate`
  compares the microphone's level with what it heard while only the reply
  played (a canceller leaves a residue that Silero still calls speech down to
  -40 dB, and Whisper turns it into near-words).

Inputs are positioned in milliseconds of the candidate's speech (the VAD's
`speech_ms`), so the same audio always gives the same decision.
"""

from __future__ import annotations

import enum
import math
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

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


def _one_edit(a: str, b: str) -> bool:
    """True when `a` and `b` differ by at most one substitution, insertion or deletion."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)) :] == b[i + 1 :]


def words(text: str) -> list[str]:
    """Lower-case words with hyphens joined ("Mm-hmm" -> "mmhmm", "uh-huh" -> "uhhuh")."""
    return _WORD.findall(text.lower().replace("-", "").replace("'", ""))


class Verdict(enum.Enum):
    CONFIRM = "confirm"
    DISMISS = "dismiss"


@dataclass(frozen=True, slots=True)
class BargeInConfig:
    min_ms: int = 500  # speech needed before the reply is stopped
    max_ms: int = 1500  # speech that stops the reply even without a transcript


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
        self.answered = False  # the STT has answered (even with nothing heard)
        self.decision: Decision | None = None

    def add_reply_text(self, text: str) -> None:
        """More of what the reply says (a sentence that started since the candidate began)."""
        self._echo.update(words(text))

    def _is_echo(self, word: str) -> bool:
        # Whisper hears a canceller's residue as near-words ("we'll" for "will"): a word
        # one edit away from one of the reply's counts as the reply's.
        if word in self._echo:
            return True
        return len(word) >= 4 and any(_one_edit(word, e) for e in self._echo)

    def _content(self) -> list[str]:
        return [w for w in words(self.text) if w not in BACKCHANNELS and not self._is_echo(w)]

    def _decide(self, verdict: Verdict, reason: str) -> Decision:
        self.decision = Decision(verdict, reason, self.speech_ms, self.text)
        return self.decision

    def _check(self) -> Decision | None:
        if self.speech_ms < self.config.min_ms:
            return None
        if self._content():
            return self._decide(Verdict.CONFIRM, "words")
        if self.speech_ms >= self.config.max_ms and not self.answered:
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
        if self.decision is not None:
            return None
        self.answered = True
        if not text.strip():
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


def rms(pcm16: bytes) -> float:
    """Root mean square of PCM16 samples (0..32768)."""
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
    return math.sqrt(float(np.dot(samples, samples)) / samples.size) if samples.size else 0.0


class EchoGate:
    """Is the person louder than the reply's echo? Frame levels in, a yes/no out.

    Fed every uplink frame while a reply plays. The floor is the 75th
    percentile of the frame levels of the 3 s before the latest 300 ms (the
    echo's loud syllables, not its gaps: it is what the microphone hears when
    only the reply plays, even when that echo itself opened the candidate).
    With less than 180 ms heard before, the floor is digital silence. The
    latest 300 ms stand above the echo when their median is `margin_db` over
    that floor: a person at the microphone is 20-40 dB above a canceller's
    residue, and a burst of the echo is not.
    """

    HISTORY = 55  # frames of 60 ms: the 3 s floor plus the 300 ms being judged
    RECENT = 5  # frames of 60 ms: 300 ms

    def __init__(self, margin_db: float = 10.0) -> None:
        self.ratio = 10 ** (margin_db / 20)
        self._levels: deque[float] = deque(maxlen=self.HISTORY)

    def reset(self) -> None:
        self._levels.clear()

    def frame(self, level: float) -> bool:
        """One frame's level; True when the latest 300 ms stand above the echo."""
        self._levels.append(level)
        levels = list(self._levels)
        recent, before = levels[-self.RECENT :], levels[: -self.RECENT]
        # Nothing heard before (the client sends no audio while it plays): anything
        # audible stands above an echo there is no sign of.
        floor = max(float(np.percentile(before, 75)), 1.0) if len(before) >= 3 else 1.0
        return float(np.median(recent)) >= floor * self.ratio
