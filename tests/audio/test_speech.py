from __future__ import annotations

import threading

import numpy as np
import pytest

from runtime.audio import synthetic
from runtime.audio.errors import AudioError
from runtime.audio.espeak import engine


def _voiced_ms(pcm: bytes, rate: int) -> float:
    samples = np.abs(np.frombuffer(pcm, "<i2"))
    return float(np.count_nonzero(samples > 500) / rate * 1000)


def test_library_engine_speaks_and_refuses_unknown_voice() -> None:
    speaker = engine()
    assert speaker is engine()  # one per process
    pcm = speaker.synthesize("Hello there, how are you?")
    assert speaker.sample_rate == 22_050
    assert 0.8 < len(pcm) / 2 / speaker.sample_rate < 3.0
    assert _voiced_ms(pcm, speaker.sample_rate) > 200
    with pytest.raises(AudioError, match="no voice"):
        speaker.synthesize("x", voice="no-such-voice")
    assert not speaker.has_voice("no-such-voice")
    assert speaker.has_voice("de") and speaker.has_voice("en-us+f3")


def test_library_engine_is_safe_from_many_threads() -> None:
    speaker = engine()
    expected = speaker.synthesize("one two three")
    results: list[bytes] = []

    def speak() -> None:
        results.append(speaker.synthesize("one two three"))

    threads = [threading.Thread(target=speak) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # espeak-ng varies a sample count slightly from call to call; a broken
    # (unserialised) engine interleaves or truncates whole buffers instead.
    assert len(results) == 4
    for pcm in results:
        assert abs(len(pcm) - len(expected)) < 0.02 * len(expected)
        assert _voiced_ms(pcm, speaker.sample_rate) > 200


def test_speech_pcm_pads_with_silence() -> None:
    pcm = synthetic.speech_pcm("testing", 16_000, lead_ms=500, tail_ms=300)
    samples = np.frombuffer(pcm, "<i2")
    assert not samples[:8000].any() and not samples[-4800:].any()
    assert _voiced_ms(pcm, 16_000) > 100


def test_speech_pcm_without_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic.shutil, "which", lambda _name: None)
    pcm = synthetic.speech_pcm("testing", 24_000)
    assert _voiced_ms(pcm, 24_000) > 100
    assert synthetic.silence(10, 8000) == bytes(160)
