from __future__ import annotations

import numpy as np
import pytest

from runtime.audio.errors import AudioError
from runtime.audio.resample import StreamResampler, resample


def _tone(freq: float, rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 10_000).astype("<i2").tobytes()


def _peak_hz(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(24_000, 16_000), (22_050, 16_000), (16_000, 24_000), (48_000, 16_000)],
)
def test_streamed_chunks_keep_pitch_and_duration(in_rate: int, out_rate: int) -> None:
    source = _tone(440, in_rate, 1.0)
    stream = StreamResampler(in_rate, out_rate)
    chunk = in_rate * 60 // 1000 * 2
    out = b"".join(stream.process(source[i : i + chunk]) for i in range(0, len(source), chunk))
    out += stream.flush()
    assert abs(len(out) // 2 - out_rate) <= 2
    assert _peak_hz(out, out_rate) == pytest.approx(440, abs=2)


def test_streaming_matches_one_shot_without_chunk_edges() -> None:
    source = _tone(300, 24_000, 0.5)
    whole = resample(source, 24_000, 16_000)
    stream = StreamResampler(24_000, 16_000)
    parts = [stream.process(source[i : i + 2880]) for i in range(0, len(source), 2880)]
    chunked = b"".join(parts) + stream.flush()
    a = np.frombuffer(whole, "<i2").astype(np.int32)
    b = np.frombuffer(chunked, "<i2").astype(np.int32)
    assert len(a) == len(b)
    assert int(np.max(np.abs(a - b))) <= 2


def test_odd_length_chunks_are_carried_over() -> None:
    source = _tone(440, 16_000, 0.1)
    stream = StreamResampler(16_000, 16_000)
    out = stream.process(source[:101]) + stream.process(source[101:])
    assert out == source
    assert stream.flush() == b""
    converting = StreamResampler(24_000, 16_000)
    joined = converting.process(source[:3]) + converting.process(source[3:]) + converting.flush()
    assert len(joined) % 2 == 0


def test_flush_starts_a_fresh_stream() -> None:
    stream = StreamResampler(24_000, 16_000)
    first = stream.process(_tone(440, 24_000, 0.2)) + stream.flush()
    second = stream.process(_tone(440, 24_000, 0.2)) + stream.flush()
    a = np.frombuffer(first, "<i2").astype(np.int32)
    b = np.frombuffer(second, "<i2").astype(np.int32)
    assert len(a) == len(b)
    assert int(np.max(np.abs(a - b))) <= 2  # soxr's int16 output rounding, nothing more


def test_rejects_nonpositive_rates() -> None:
    with pytest.raises(AudioError):
        StreamResampler(0, 16_000)
