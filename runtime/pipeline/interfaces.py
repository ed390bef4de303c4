"""The four seams of the speech pipeline.

Each provider kind is one small structural interface with a streaming method, in
the manner of httpx's transports: the runtime composes them, tests and the
offline default plug in at the same place. Audio between stages is always PCM16
little-endian mono; every chunk states its sample rate.

- VAD: per-session `VadStream.feed(pcm16 @16 kHz)` -> speech start / end events.
  `feed` is async so a process-wide detector can batch windows of many sessions
  into one inference.
- STT: `stream(audio, options)` consumes an async iterable of PCM16 16 kHz chunks
  and yields interim and final transcripts. The end of the input iterable means
  "the utterance is over, flush". A provider with its own endpointing yields a
  `Transcript(speech_final=True)` while input is still open.
- LLM: `stream(request)` yields text deltas and, when the request offers tools,
  `ToolCall`s (each complete, its arguments streamed in and joined). The tool
  loop (`runtime/tools/loop.py`) runs the calls and asks again with the results.
- TTS: `stream(text, options)` yields `PcmChunk`s.

Cancellation: closing the async generator (or cancelling the task iterating it)
must stop the underlying network call or computation.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from runtime.pipeline.turn_end import TurnEndConfig

PCM_SAMPLE_WIDTH = 2  # bytes per sample, PCM16
UPLINK_RATE = 16_000


class VadEventKind(enum.Enum):
    SPEECH_START = "speech_start"
    SPEECH_END = "speech_end"


@dataclass(frozen=True, slots=True)
class VadEvent:
    kind: VadEventKind
    # Position in the stream, in milliseconds of audio fed since the last reset.
    at_ms: int
    # Why a semantic end of turn ended the utterance ("complete", "long_silence",
    # "fallback") and the model's P(complete); empty for a plain silence.
    reason: str = ""
    probability: float | None = None


@dataclass(frozen=True, slots=True)
class VadOptions:
    """From the agent's `vad` stage."""

    endpointing_ms: int = 300  # silence after speech that ends an utterance
    threshold: float = 0.5
    min_speech_ms: int = 64  # speech needed before SPEECH_START is reported
    # Semantic end of turn (a model judges each pause); None: `endpointing_ms` of silence.
    semantic: TurnEndConfig | None = None


class VadStream(Protocol):
    async def feed(self, pcm16: bytes) -> list[VadEvent]: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...

    @property
    def speech_ms(self) -> int:
        """Length of the speech run in progress, to its last voiced audio; 0 in silence."""
        ...

    def listen(self, listener: Callable[[list[VadEvent]], None] | None) -> None:
        """Where a stream that decides later than its `feed` (a model judging a pause)
        delivers those events; streams that decide within `feed` ignore it."""
        ...


class VAD(Protocol):
    name: str

    def open(self, options: VadOptions) -> VadStream: ...


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    is_final: bool
    # True when the provider itself decided the utterance ended (provider-side VAD).
    speech_final: bool = False


@dataclass(frozen=True, slots=True)
class SttOptions:
    model: str = ""
    language: str = "en-US"
    sample_rate: int = UPLINK_RATE
    features: tuple[str, ...] = ("smart_format",)
    endpointing_ms: int | None = None  # provider-side endpointing, when the provider does it
    utterance_end_ms: int | None = None


class STT(Protocol):
    name: str

    def stream(
        self, audio: AsyncIterable[bytes], options: SttOptions
    ) -> AsyncIterator[Transcript]: ...


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call: a name its API accepts, and a JSON schema."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks for `name` with `arguments` (JSON text exactly as it wrote it)."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """The assistant's turn that asked for tools (and any text it said first)."""

    calls: tuple[ToolCall, ...]
    text: str = ""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool's answer, fed back as data: always a tool result, never instructions."""

    call_id: str
    name: str
    output: str
    is_error: bool = False


ChatItem = Message | ToolCalls | ToolResult
LlmOutput = str | ToolCall


@dataclass(frozen=True, slots=True)
class LlmRequest:
    instructions: str
    messages: Sequence[ChatItem]
    # The agent's normalised `llm` stage settings (docs/protocols.md §6), keyed by setting key.
    settings: Mapping[str, Any] = field(default_factory=dict)
    model: str = ""
    tools: Sequence[ToolSpec] = ()
    # "auto": the model may call tools; "none": it must answer in words (last step).
    tool_choice: Literal["auto", "none"] = "auto"


class LLM(Protocol):
    name: str

    def stream(self, request: LlmRequest) -> AsyncIterator[LlmOutput]: ...


@dataclass(frozen=True, slots=True)
class PcmChunk:
    pcm: bytes  # PCM16 LE mono
    sample_rate: int


@dataclass(frozen=True, slots=True)
class TtsOptions:
    model: str = ""
    voice: str = ""
    sample_rate: int = 24_000  # preferred; the chunk says what was produced


class TTS(Protocol):
    name: str

    def stream(self, text: str, options: TtsOptions) -> AsyncIterator[PcmChunk]: ...


@dataclass(frozen=True, slots=True)
class Pipeline:
    """What one session's turns run on, already built for its agent.

    Fallback between providers is itself a provider (a composite that tries an
    ordered list), so the runtime never special-cases it. `vad` is None when the
    STT provider does its own endpointing (Deepgram, Azure segmentation).
    """

    vad: VAD | None
    stt: STT
    llm: LLM
    tts: TTS
