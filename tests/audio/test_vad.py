from __future__ import annotations

import asyncio
import sys

import numpy as np
import pytest

from runtime.audio.synthetic import silence, speech_pcm
from runtime.pipeline.interfaces import VadEvent, VadEventKind, VadOptions
from runtime.pipeline.vad import SileroVAD, VadModelMissing, model_path, silero_model

FRAME = 1920  # 60 ms at 16 kHz


@pytest.fixture(scope="module")
def padded_speech() -> bytes:
    return speech_pcm("what is the weather like today", 16_000, lead_ms=600, tail_ms=900)


async def _feed_all(vad: SileroVAD, pcm: bytes, chunk: int = FRAME) -> list[VadEvent]:
    stream = vad.open(VadOptions(endpointing_ms=300))
    events: list[VadEvent] = []
    for start in range(0, len(pcm), chunk):
        events += await stream.feed(pcm[start : start + chunk])
    stream.close()
    return events


def test_model_is_found_without_importing_the_package() -> None:
    assert model_path().name == "silero_vad.onnx"
    assert silero_model() is silero_model()
    assert "silero_vad" not in sys.modules  # importing it would import torch


def test_missing_model_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runtime.pipeline.vad.importlib.util.find_spec", lambda _name: None)
    with pytest.raises(VadModelMissing, match="--no-deps silero-vad"):
        model_path()


async def test_finds_start_and_end_of_padded_speech(padded_speech: bytes) -> None:
    events = await _feed_all(SileroVAD(), padded_speech)
    assert [e.kind for e in events] == [VadEventKind.SPEECH_START, VadEventKind.SPEECH_END]
    speech_ms = (len(padded_speech) / 2 - 16 * (600 + 900)) / 16
    start, end = events[0].at_ms, events[1].at_ms
    assert 500 <= start <= 800
    assert 600 + speech_ms - 400 <= end <= 600 + speech_ms + 100


async def test_silence_and_noise_give_no_events() -> None:
    rng = np.random.default_rng(1)
    noise = (rng.normal(0, 30, 16_000 * 2)).astype("<i2").tobytes()  # about -60 dBFS
    vad = SileroVAD()
    assert await _feed_all(vad, silence(2000)) == []
    assert await _feed_all(vad, noise) == []


async def test_chunk_size_does_not_change_decisions(padded_speech: bytes) -> None:
    vad = SileroVAD()
    reference = await _feed_all(vad, padded_speech)
    assert await _feed_all(vad, padded_speech, chunk=641) == reference  # odd byte counts too
    assert await _feed_all(vad, padded_speech, chunk=len(padded_speech)) == reference


async def test_batched_gives_the_same_decisions_as_unbatched(padded_speech: bytes) -> None:
    # Eight sessions with different audio: other phrases, other leading silence.
    other = speech_pcm("set a timer for ten minutes", 16_000, lead_ms=300, tail_ms=700)
    clips = [silence(96 * i) + (padded_speech if i % 2 else other) for i in range(8)]
    alone = SileroVAD(max_batch=1)
    references = [await _feed_all(alone, clip) for clip in clips]
    assert alone.stats.largest_batch == 1
    assert all(len(events) == 2 for events in references)

    batched = SileroVAD()
    results = await asyncio.gather(*(_feed_all(batched, clip) for clip in clips))
    assert batched.stats.largest_batch > 1
    assert batched.stats.inferences < batched.stats.windows
    assert results == references


async def test_reset_and_close(padded_speech: bytes) -> None:
    vad = SileroVAD()
    stream = vad.open(VadOptions())
    first = await stream.feed(padded_speech[: 16_000 * 2 * 2])  # 2 s: speech has started
    assert [e.kind for e in first] == [VadEventKind.SPEECH_START]
    assert stream.in_speech and stream.last_probability >= 0.0
    stream.reset()
    assert not stream.in_speech
    again = await stream.feed(padded_speech[: 16_000 * 2 * 2])
    assert again == first  # positions restart at 0 and the model state was cleared
    stream.close()
    assert await stream.feed(padded_speech) == []


async def test_cancelled_feed_does_not_break_other_sessions(padded_speech: bytes) -> None:
    vad = SileroVAD()
    doomed = vad.open(VadOptions())
    task = asyncio.create_task(doomed.feed(padded_speech))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [e.kind for e in await _feed_all(vad, padded_speech)] == [
        VadEventKind.SPEECH_START,
        VadEventKind.SPEECH_END,
    ]


async def test_inference_failure_reaches_the_caller(padded_speech: bytes) -> None:
    class Broken:
        def run(self, windows: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            raise RuntimeError("onnxruntime fell over")

    vad = SileroVAD(model=Broken())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="fell over"):
        await vad.open(VadOptions()).feed(padded_speech[:2048])


async def test_batch_failure_reaches_every_session() -> None:
    class Broken:
        def run(self, windows: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            raise RuntimeError("onnxruntime fell over")

    vad = SileroVAD(model=Broken())  # type: ignore[arg-type]
    streams = [vad.open(VadOptions()) for _ in range(4)]
    results = await asyncio.gather(*(s.feed(bytes(1024)) for s in streams), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_small_max_batch_splits_and_cancelled_members_are_skipped(
    padded_speech: bytes,
) -> None:
    alone = SileroVAD(max_batch=1)
    reference = await _feed_all(alone, padded_speech)
    vad = SileroVAD(max_batch=2)  # three sessions: batches of two, then a lone window
    doomed = asyncio.create_task(_feed_all(vad, padded_speech))
    survivors = [asyncio.create_task(_feed_all(vad, padded_speech)) for _ in range(2)]
    for _ in range(5):
        await asyncio.sleep(0)
    doomed.cancel()
    assert [await task for task in survivors] == [reference, reference]
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert vad.stats.largest_batch == 2
