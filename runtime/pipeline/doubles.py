"""Function-backed test doubles at the four seams (like httpx's MockTransport).

They are real providers as far as the runtime can tell, with zero latency and
no models: tests, `opendot bench runtime` and demos plug them into a
`Pipeline`. A function that raises a `ProviderError` simulates an outage.

- `FunctionLLM(fn)`: `fn(request)` returns a str, an iterable of deltas, an
  async iterator of deltas, or an awaitable of any of those.
- `FunctionTTS(fn)`: `fn(text)` returns PCM16 bytes (at `sample_rate`) or a
  `PcmChunk`; the default speaks a quiet tone whose length follows the text.
- `ScriptedSTT(text)`: hears all audio and then returns `text` (a str or a
  function of the PCM) as one final transcript.
- `EnergyVAD()`: speech is audio above a level; an utterance ends after the
  agent's endpointing silence. `ScriptedVAD(fn)`: `fn(index, pcm)` decides.
"""

from __future__ import annotations

import functools
import inspect
import math
import struct
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import numpy as np

from runtime.pipeline.interfaces import (
    LlmOutput,
    LlmRequest,
    PcmChunk,
    Pipeline,
    SttOptions,
    Transcript,
    TtsOptions,
    VadEvent,
    VadEventKind,
    VadOptions,
)

PCM_RATE = 16_000


class FunctionLLM:
    def __init__(self, fn: Callable[[LlmRequest], Any], name: str = "function-llm") -> None:
        self.fn = fn
        self.name = name
        self.requests: list[LlmRequest] = []

    async def stream(self, request: LlmRequest) -> AsyncIterator[LlmOutput]:
        self.requests.append(request)
        result = self.fn(request)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, str):
            yield result
        elif isinstance(result, AsyncIterable):
            async for delta in result:
                yield delta
        else:
            for delta in result:
                yield delta


@functools.cache
def _tone(seconds: float, rate: int, amplitude: int = 3000) -> bytes:
    """Shared by every FunctionTTS: a session must not pay 192 KiB for its own copy."""
    n = int(seconds * rate)
    samples = (amplitude * np.sin(2 * math.pi * 220 * np.arange(n) / rate)).astype("<i2")
    return samples.tobytes()


class FunctionTTS:
    def __init__(
        self,
        fn: Callable[[str], bytes | PcmChunk] | None = None,
        *,
        sample_rate: int = 24_000,
        ms_per_char: float = 8.0,
        name: str = "function-tts",
    ) -> None:
        self.fn = fn
        self.sample_rate = sample_rate
        self.ms_per_char = ms_per_char
        self.name = name
        self.texts: list[str] = []
        self._tone = _tone(4.0, sample_rate)

    async def stream(self, text: str, options: TtsOptions) -> AsyncIterator[PcmChunk]:
        self.texts.append(text)
        if self.fn is not None:
            result = self.fn(text)
            if inspect.isawaitable(result):
                result = await result
            yield result if isinstance(result, PcmChunk) else PcmChunk(result, self.sample_rate)
            return
        n = min(len(self._tone), 2 * int(len(text) * self.ms_per_char * self.sample_rate / 1000))
        yield PcmChunk(self._tone[: max(2, n - n % 2)], self.sample_rate)


class ScriptedSTT:
    def __init__(
        self,
        text: str | Callable[[bytes], str] = "hello",
        *,
        name: str = "scripted-stt",
    ) -> None:
        self.text = text
        self.name = name
        self.heard_bytes: list[int] = []

    async def stream(
        self, audio: AsyncIterable[bytes], options: SttOptions
    ) -> AsyncIterator[Transcript]:
        keep = callable(self.text)
        parts: list[bytes] = []
        total = 0
        async for chunk in audio:
            total += len(chunk)
            if keep:
                parts.append(chunk)
        self.heard_bytes.append(total)
        text = self.text(b"".join(parts)) if callable(self.text) else self.text
        yield Transcript(text, is_final=True, speech_final=True)


class _EnergyStream:
    def __init__(self, options: VadOptions, threshold_dbfs: float) -> None:
        self.options = options
        self.threshold = 32768 * 10 ** (threshold_dbfs / 20)
        self.reset()

    def reset(self) -> None:
        self.position_ms = 0.0
        self.speaking = False
        self.voiced_ms = 0.0
        self.silent_ms = 0.0
        self._start_ms = 0.0
        self._last_loud_ms = 0.0

    @property
    def speech_ms(self) -> int:
        return int(self._last_loud_ms - self._start_ms) if self.speaking else 0

    def listen(self, listener: Callable[[list[VadEvent]], None] | None) -> None:
        pass

    async def feed(self, pcm16: bytes) -> list[VadEvent]:
        ms = len(pcm16) / 2 / PCM_RATE * 1000
        samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
        # np.dot avoids numpy's Python-level mean wrapper: this runs per frame per session.
        loud = samples.size > 0 and float(np.dot(samples, samples)) > (
            self.threshold * self.threshold * samples.size
        )
        self.position_ms += ms
        at = int(self.position_ms)
        if not self.speaking:
            self.voiced_ms = self.voiced_ms + ms if loud else 0.0
            if self.voiced_ms >= self.options.min_speech_ms:
                self.speaking, self.silent_ms = True, 0.0
                self._start_ms = self.position_ms - self.voiced_ms
                self._last_loud_ms = self.position_ms
                return [VadEvent(VadEventKind.SPEECH_START, at)]
            return []
        if loud:
            self._last_loud_ms = self.position_ms
        self.silent_ms = 0.0 if loud else self.silent_ms + ms
        if self.silent_ms >= self.options.endpointing_ms:
            self.speaking, self.voiced_ms = False, 0.0
            # Stamped where the silence began, as Silero's endpointer does.
            return [VadEvent(VadEventKind.SPEECH_END, int(self.position_ms - self.silent_ms))]
        return []

    def close(self) -> None:
        pass


class EnergyVAD:
    def __init__(self, threshold_dbfs: float = -40.0, name: str = "energy-vad") -> None:
        self.threshold_dbfs = threshold_dbfs
        self.name = name

    def open(self, options: VadOptions) -> _EnergyStream:
        return _EnergyStream(options, self.threshold_dbfs)


class _ScriptedStream:
    def __init__(self, fn: Callable[[int, bytes], list[VadEvent]]) -> None:
        self.fn = fn
        self.index = 0

    async def feed(self, pcm16: bytes) -> list[VadEvent]:
        events = self.fn(self.index, pcm16)
        self.index += 1
        return events

    def reset(self) -> None:
        self.index = 0

    def close(self) -> None:
        pass

    speech_ms = 0

    def listen(self, listener: Callable[[list[VadEvent]], None] | None) -> None:
        pass


class ScriptedVAD:
    def __init__(
        self, fn: Callable[[int, bytes], list[VadEvent]], name: str = "scripted-vad"
    ) -> None:
        self.fn = fn
        self.name = name

    def open(self, options: VadOptions) -> _ScriptedStream:
        return _ScriptedStream(self.fn)


def chunked(*chunks: str) -> str:
    """An LLM reply in the `<chunk>` format."""
    return "".join(f"<chunk>{c}</chunk>" for c in chunks)


def double_pipeline(
    reply: str | Callable[[LlmRequest], Any] = "<chunk>Hello there.</chunk>",
    transcript: str | Callable[[bytes], str] = "hello there",
    *,
    vad: Any = None,
    tts: Any = None,
) -> Pipeline:
    """Zero-latency providers at all four seams."""
    llm_fn = reply if callable(reply) else (lambda _request: reply)
    return Pipeline(
        vad=vad if vad is not None else EnergyVAD(),
        stt=ScriptedSTT(transcript),
        llm=FunctionLLM(llm_fn),
        tts=tts if tts is not None else FunctionTTS(),
    )


def silence_frame(ms: int = 60, rate: int = PCM_RATE) -> bytes:
    return bytes(2 * rate * ms // 1000)


def loud_frame(ms: int = 60, rate: int = PCM_RATE) -> bytes:
    n = rate * ms // 1000
    return struct.pack(f"<{n}h", *(8000 if (i // 20) % 2 else -8000 for i in range(n)))
