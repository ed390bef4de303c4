from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import numpy as np
import pytest

from runtime.audio.resample import resample
from runtime.pipeline.errors import ProviderBadResponse
from runtime.pipeline.interfaces import PcmChunk, TtsOptions
from runtime.providers.local_stt import whisper_engine
from runtime.providers.local_tts import EspeakTTS, PiperTTS, is_silent, piper_voice

TEXT = "The weather is sunny today. Shall we go for a walk?"


@pytest.fixture(scope="session")
def piper() -> PiperTTS:
    return PiperTTS(piper_voice())


async def _chunks(tts: Any, text: str, options: TtsOptions | None = None) -> list[PcmChunk]:
    return [chunk async for chunk in tts.stream(text, options or TtsOptions())]


def _seconds(chunks: list[PcmChunk]) -> float:
    return sum(len(c.pcm) / 2 / c.sample_rate for c in chunks)


async def test_piper_streams_one_chunk_per_sentence(piper: PiperTTS) -> None:
    chunks = await _chunks(piper, TEXT)
    assert len(chunks) == 2
    assert {c.sample_rate for c in chunks} == {22_050}
    assert all(not is_silent(c.pcm) for c in chunks)
    assert 2.0 < _seconds(chunks) < 8.0
    assert piper_voice() is piper_voice()


async def test_piper_speech_is_intelligible(piper: PiperTTS) -> None:
    chunks = await _chunks(piper, "Please turn on the kitchen lights.")
    pcm = resample(b"".join(c.pcm for c in chunks), 22_050, 16_000)
    text = whisper_engine().transcribe(pcm).text.lower()
    for word in ("turn", "kitchen", "lights"):
        assert word in text


async def test_piper_says_nothing_for_blank_text(piper: PiperTTS) -> None:
    assert await _chunks(piper, "   ") == []


async def test_closing_the_stream_early_is_clean(piper: PiperTTS) -> None:
    stream = piper.stream(TEXT + " " + TEXT, TtsOptions())
    assert isinstance(stream, AsyncGenerator)
    first = await anext(stream)
    assert first.pcm
    await stream.aclose()


async def test_piper_failures_map_to_provider_errors() -> None:
    class BrokenVoice:
        class config:  # mimics PiperVoice.config
            sample_rate = 22_050

        def synthesize(self, text: str) -> Any:
            raise RuntimeError("onnxruntime fell over")

    with pytest.raises(ProviderBadResponse, match="fell over"):
        await _chunks(PiperTTS(BrokenVoice()), "hello")


async def test_espeak_speaks_each_sentence() -> None:
    chunks = await _chunks(EspeakTTS(), TEXT)
    assert len(chunks) == 2
    assert {c.sample_rate for c in chunks} == {22_050}
    assert all(not is_silent(c.pcm) for c in chunks)
    women = await _chunks(EspeakTTS(), TEXT, TtsOptions(voice="en-us+f3"))
    assert not is_silent(women[0].pcm)
    assert await _chunks(EspeakTTS(), "") == []


async def test_espeak_speaks_unknown_voices_with_its_default() -> None:
    # The last-resort voice must speak even when the agent names another
    # vendor's voice ("alloy"): it falls back to its default voice.
    fallback = await _chunks(EspeakTTS(), "hello", TtsOptions(voice="alloy"))
    default = await _chunks(EspeakTTS(), "hello")
    assert len(fallback) == 1 and not is_silent(fallback[0].pcm)
    assert abs(len(fallback[0].pcm) - len(default[0].pcm)) < 0.05 * len(default[0].pcm)


def test_is_silent() -> None:
    assert is_silent(b"")
    assert is_silent(np.full(100, 200, "<i2").tobytes())
    assert not is_silent(np.full(100, -2000, "<i2").tobytes())
