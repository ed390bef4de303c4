from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator

import pytest

from runtime.audio.resample import resample
from runtime.audio.synthetic import silence, speech_pcm
from runtime.pipeline.errors import ConfigRefused, ProviderBadResponse
from runtime.pipeline.interfaces import SttOptions, Transcript
from runtime.providers.local_stt import (
    LocalWhisperSTT,
    WhisperEngine,
    WhisperResult,
    model_dir,
    whisper_engine,
)

NUMBERS = {"10": "ten", "5": "five", "3": "three"}


def _words(text: str) -> list[str]:
    tokens = re.findall(r"[a-z0-9']+", text.lower())
    return [NUMBERS.get(token, token) for token in tokens]


@pytest.fixture(scope="session")
def engine() -> WhisperEngine:
    return whisper_engine()


async def _frames(pcm: bytes, frame_bytes: int = 1920) -> AsyncIterator[bytes]:
    for start in range(0, len(pcm), frame_bytes):
        yield pcm[start : start + frame_bytes]


async def _transcripts(
    stt: LocalWhisperSTT, pcm: bytes, options: SttOptions | None = None
) -> list[Transcript]:
    return [t async for t in stt.stream(_frames(pcm), options or SttOptions())]


def test_model_ships_in_the_wheel(engine: WhisperEngine) -> None:
    assert (model_dir() / "model.bin").is_file()
    assert whisper_engine() is engine


async def test_transcribes_espeak_speech(engine: WhisperEngine) -> None:
    pcm = speech_pcm("set a timer for ten minutes", 16_000, lead_ms=300, tail_ms=300)
    result = await _transcripts(LocalWhisperSTT(engine), pcm)
    assert len(result) == 1 and result[0].is_final and not result[0].speech_final
    assert _words(result[0].text) == ["set", "a", "timer", "for", "ten", "minutes"]


async def test_resamples_other_input_rates(engine: WhisperEngine) -> None:
    pcm = resample(speech_pcm("turn on the kitchen lights", 16_000), 16_000, 24_000)
    result = await _transcripts(LocalWhisperSTT(engine), pcm, SttOptions(sample_rate=24_000))
    assert _words(result[0].text) == ["turn", "on", "the", "kitchen", "lights"]


async def test_silence_and_tiny_inputs_give_an_empty_final(engine: WhisperEngine) -> None:
    stt = LocalWhisperSTT(engine)
    assert await _transcripts(stt, b"") == [Transcript("", is_final=True)]
    assert await _transcripts(stt, silence(50)) == [Transcript("", is_final=True)]
    # Whisper tends to hallucinate "you" on silence; the no-speech rule drops it.
    assert await _transcripts(stt, silence(2000)) == [Transcript("", is_final=True)]


async def test_keeps_at_most_max_utterance_audio(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    class Counting(_Blocking):
        def transcribe(
            self, pcm16: bytes, cancelled: threading.Event | None = None
        ) -> WhisperResult:
            seen.append(len(pcm16))
            return WhisperResult("ok", len(pcm16) / 32_000, 0.0)

    monkeypatch.setattr("runtime.providers.local_stt.MAX_UTTERANCE_S", 1)
    result = await _transcripts(LocalWhisperSTT(Counting(), partials=None), silence(3000))
    assert result == [Transcript("ok", is_final=True)]
    assert seen == [32_000]
    resampled = await _transcripts(
        LocalWhisperSTT(Counting(), partials=None),
        silence(3000, 24_000),
        SttOptions(sample_rate=24_000),
    )
    assert resampled[0].text == "ok" and seen[-1] == 32_000


async def test_refuses_languages_tiny_en_cannot_hear() -> None:
    with pytest.raises(ConfigRefused, match="only understands English"):
        await _transcripts(LocalWhisperSTT(), silence(500), SttOptions(language="de-DE"))


class _Blocking(WhisperEngine):
    """Stands in for the model to observe cancellation and failures."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.started = threading.Event()
        self.saw_cancel = threading.Event()

    def transcribe(self, pcm16: bytes, cancelled: threading.Event | None = None) -> WhisperResult:
        self.started.set()
        if self.fail:
            raise RuntimeError("CTranslate2 exploded")
        assert cancelled is not None
        if cancelled.wait(timeout=30):
            self.saw_cancel.set()
        return WhisperResult("", 0.0, 0.0)


async def test_cancellation_reaches_the_worker() -> None:
    engine = _Blocking()
    task = asyncio.create_task(_transcripts(LocalWhisperSTT(engine), silence(1000)))
    assert await asyncio.to_thread(engine.started.wait, 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(engine.saw_cancel.wait, 30)


async def test_engine_failures_map_to_provider_errors() -> None:
    with pytest.raises(ProviderBadResponse, match="exploded"):
        await _transcripts(LocalWhisperSTT(_Blocking(fail=True)), silence(1000))


async def test_partials_while_the_utterance_grows(engine: WhisperEngine) -> None:
    from tests.conftest import TEST_TIME_UNIT

    pcm = speech_pcm("set a timer for ten minutes", 16_000, lead_ms=200, tail_ms=300)
    first_partial = asyncio.Event()

    async def mic() -> AsyncIterator[bytes]:
        half = len(pcm) * 2 // 3 // 1920 * 1920
        async for frame in _frames(pcm[:half]):
            yield frame
            await asyncio.sleep(0.06)  # a Dot's pace, so decodes can finish meanwhile
        # The person pauses (a Dot keeps streaming) until Whisper has shown what it
        # heard so far; then the rest of the utterance.
        deadline = asyncio.get_running_loop().time() + 60 * TEST_TIME_UNIT
        while not first_partial.is_set():
            assert asyncio.get_running_loop().time() < deadline, "no partial transcript"
            yield silence(60)
            await asyncio.sleep(0.06)
        async for frame in _frames(pcm[half:]):
            yield frame

    got: list[Transcript] = []
    async for transcript in LocalWhisperSTT(engine).stream(mic(), SttOptions()):
        got.append(transcript)
        if not transcript.is_final:
            first_partial.set()
    *partials, final = got
    assert partials and not any(p.is_final for p in partials)
    full = ["set", "a", "timer", "for", "ten", "minutes"]
    heard = _words(partials[0].text)
    # What had been said so far (a word cut mid-way may be misheard).
    assert heard and heard[0] == "set"
    assert final.is_final and _words(final.text) == full
