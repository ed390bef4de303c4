"""A turn's timeline: its stages as spans, in the original OpenDot console's words.

The console draws one lane per span (docs/protocols.md §4, "Timeline"): `stage`
picks the lane's colour and group, `label` is its caption, `startMs` / `endMs`
place it, `bytes` annotates a synthesised chunk. The same spans go to a browser
on `/voice` (`timeline` events, before `assistant_end`) and into the turn's
record, which the console's History reads back, so both views agree.

Times are milliseconds since the end of the user's speech (`speech_end`, the
turn's origin); `elapsedMs` is the span's end (when it was done, as the
original runtime reported it). Stages, in the order they happen:

| stage | span | from → to |
|---|---|---|
| `stt_final` | `stt-final` | speech end → final transcript |
| `llm_request` | `llm-request` | request sent → first token |
| `llm_first_delta` | `llm-first-token` | first token (a point) |
| `llm_done` | `llm-stream` | first token → the model's last token |
| `tts_request` | `tts-request` | first sentence to TTS → its first audio |
| `tts_chunk` | `tts-chunk-N` | synthesis of sentence N (`bytes`: PCM produced) |
| `tts_done` | `tts-done` | first sentence to TTS → the last sentence synthesised |
| `first_audio` | `first-audio` | first audio sent to the client (a point) |

A stage that did not run (no LLM on an apology, no TTS on an ignored turn) has
no span. Speech-to-speech turns have the stages their provider reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from runtime.protocol.browser import Timeline

# Spans stored per turn (the internal API caps the list at 64): the fixed stages
# plus this many synthesised sentences; a longer reply keeps its first ones.
MAX_CHUNK_SPANS: Final = 48


@dataclass(frozen=True, slots=True)
class RawSpan:
    """A span measured on the loop clock (seconds), before it is placed on the turn."""

    span_id: str
    stage: str
    label: str
    start: float
    end: float
    bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Span:
    span_id: str
    stage: str
    label: str
    start_ms: float
    end_ms: float
    bytes: int | None = None
    provider: str | None = None  # who served the stage, when the turn knows

    @property
    def elapsed_ms(self) -> float:
        return self.end_ms

    def event(self, turn_id: str) -> Timeline:
        return Timeline(
            turn_id,
            self.span_id,
            self.stage,
            self.label,
            self.start_ms,
            self.end_ms,
            self.elapsed_ms,
            self.bytes,
            self.provider,
        )

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "spanId": self.span_id,
            "stage": self.stage,
            "label": self.label,
            "startMs": self.start_ms,
            "endMs": self.end_ms,
            "elapsedMs": self.elapsed_ms,
        }
        if self.bytes is not None:
            record["bytes"] = self.bytes
        if self.provider is not None:
            record["provider"] = self.provider
        return record


# (span id, stage, label, start mark, end mark); a point when both marks are one.
_FROM_MARKS: Final = (
    ("stt-final", "stt_final", "STT final", "speech_end", "stt_final"),
    ("llm-request", "llm_request", "LLM request", "llm_request", "llm_first_token"),
    ("llm-first-token", "llm_first_delta", "First token", "llm_first_token", "llm_first_token"),
    ("llm-stream", "llm_done", "LLM stream", "llm_first_token", "llm_done"),
    ("tts-request", "tts_request", "First sentence to speech", "first_chunk", "tts_first_pcm"),
    ("tts-done", "tts_done", "Speech synthesis", "first_chunk", "tts_done"),
    ("first-audio", "first_audio", "First audio", "first_audio", "first_audio"),
)


def stage_of(span_stage: str) -> str | None:
    """The pipeline stage a span belongs to (`llm_done` -> `llm`); None for `first_audio`."""
    head = span_stage.split("_", 1)[0]
    return head if head in ("stt", "llm", "tts") else None


def build_timeline(
    marks: dict[str, float], chunks: list[RawSpan], providers: Mapping[str, str] | None = None
) -> list[Span]:
    """The turn's spans in time order; [] when its speech end was never marked.
    `providers` (stage -> provider name) names who served each span."""
    origin = marks.get("speech_end")
    if origin is None:
        return []

    def ms(value: float) -> float:
        return max(0.0, round((value - origin) * 1000, 1))

    raw: list[RawSpan] = []
    for span_id, stage, label, start_name, end_name in _FROM_MARKS:
        start, end = marks.get(start_name), marks.get(end_name)
        if start is not None and end is not None:
            raw.append(RawSpan(span_id, stage, label, start, max(start, end)))
    raw.extend(chunks[:MAX_CHUNK_SPANS])
    served = providers or {}

    def provider(stage: str) -> str | None:
        key = stage_of(stage)
        return served.get(key) if key is not None else None

    spans = [
        Span(r.span_id, r.stage, r.label, ms(r.start), ms(r.end), r.bytes, provider(r.stage))
        for r in raw
    ]
    order = {span_id: i for i, (span_id, *_rest) in enumerate(_FROM_MARKS)}
    return sorted(spans, key=lambda s: (s.start_ms, s.end_ms, order.get(s.span_id, 99)))
