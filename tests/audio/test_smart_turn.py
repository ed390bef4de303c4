"""Smart Turn v3.2 and its Whisper-style features, against independent references."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from runtime.audio.logmel import fit_window, log_mel
from runtime.audio.resample import resample
from runtime.pipeline.smart_turn import (
    WINDOW_SAMPLES,
    SmartTurn,
    SmartTurnMissing,
    model_path,
    smart_turn_model,
)

REFERENCE = Path(__file__).parent / "data" / "whisper_logmel_reference.npz"


def _reference_signal() -> np.ndarray:
    """The signal the reference features were computed from (see the test below)."""
    rng = np.random.default_rng(16)
    t = np.arange(3 * 16000) / 16000
    chirp = 0.3 * np.sin(2 * np.pi * (200 * t + 600 * t * t))
    tone = 0.1 * np.sin(2 * np.pi * 1800 * t) * (t > 1.0)
    return (chirp + tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_features_match_the_whisper_feature_extractor() -> None:
    # The reference is transformers' WhisperFeatureExtractor(chunk_length=8) on the
    # same window (padding max_length, do_normalize): every 10th of its 800 frames.
    reference = np.load(REFERENCE)["frames"]
    ours = log_mel(fit_window(_reference_signal(), WINDOW_SAMPLES))
    assert ours.shape == (80, 800)
    assert ours.dtype == np.float32
    assert np.abs(ours[:, ::10] - reference).max() < 1e-4


def test_window_keeps_the_end_and_pads_the_start() -> None:
    audio = np.arange(1, 11, dtype=np.float32)
    assert fit_window(audio, 4).tolist() == [7, 8, 9, 10]
    padded = fit_window(audio, 12)
    assert padded.tolist() == [0, 0, *range(1, 11)]


def test_model_ships_in_the_wheel_and_is_read_without_importing_pipecat() -> None:
    assert model_path().name == "smart-turn-v3.2-cpu.onnx"
    model = smart_turn_model()
    assert model is smart_turn_model()
    assert model.input_shape[1:] == (80, 800)
    assert "pipecat" not in sys.modules  # importing it would need its dependencies


def test_missing_model_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runtime.pipeline.smart_turn.importlib.util.find_spec", lambda _n: None)
    with pytest.raises(SmartTurnMissing, match="--no-deps"):
        model_path()


@pytest.fixture(scope="module")
def piper() -> object:
    from piper.config import SynthesisConfig

    from runtime.providers.local_tts import piper_voice

    voice = piper_voice()
    # Piper's noise off: the same text gives the same audio, so the scores are stable.
    still = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)

    def speak(text: str) -> np.ndarray:
        pcm = b"".join(c.audio_int16_bytes for c in voice.synthesize(text, still))
        pcm16 = resample(pcm, 22_050, 16_000)
        tail = np.zeros(3200, dtype=np.float32)  # the 200 ms pause the model is asked at
        return np.concatenate([np.frombuffer(pcm16, dtype="<i2") / 32768.0, tail])

    return speak


def test_finished_sentences_score_high_and_trailing_fillers_low(piper: object) -> None:
    speak = piper  # Piper's natural prosody; espeak-ng's flat voice confuses the model
    model = smart_turn_model()
    finished = [
        "Please set a timer for ten minutes.",
        "I'd like to order a large pizza.",
    ]
    unfinished = [
        "I was thinking that maybe we could, um",
        "Hmm, let me think, uh",
        "and then",
    ]
    done = [model.probability(speak(t)) for t in finished]  # type: ignore[operator]
    open_ = [model.probability(speak(t)) for t in unfinished]  # type: ignore[operator]
    assert min(done) > 0.8, done
    assert max(open_) < 0.2, open_


async def test_judge_refuses_work_beyond_its_queue() -> None:
    class Slow:
        calls = 0

        def probability(self, audio: np.ndarray) -> float:
            self.calls += 1
            import time

            time.sleep(0.05)
            return 0.9

    import asyncio

    slow = Slow()
    judge = SmartTurn(model=slow, max_pending=1)  # type: ignore[arg-type]
    results = await asyncio.gather(*(judge.judge(np.zeros(10, np.float32)) for _ in range(4)))
    assert results.count(None) == 2 and results.count(0.9) == 2
    assert judge.stats.judged == 2 and judge.stats.skipped == 2 and slow.calls == 2
