from __future__ import annotations

import io
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from runtime.audio.containers import mp3_bytes, parse_wav, read_wav, wav_bytes
from runtime.audio.errors import AudioError


def test_wav_round_trip(tmp_path: Path, weather_16k: bytes) -> None:
    data = wav_bytes(weather_16k, 16_000)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    path = tmp_path / "x.wav"
    path.write_bytes(data)
    assert read_wav(path) == (weather_16k, 16_000)


def test_stereo_is_averaged_to_mono() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(np.array([100, 300, -50, -150], "<i2").tobytes())
    pcm, rate = parse_wav(buffer.getvalue())
    assert rate == 8000
    assert np.frombuffer(pcm, "<i2").tolist() == [200, -100]


def test_refuses_non_pcm16() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(b"\x80" * 10)
    with pytest.raises(AudioError, match="8-bit"):
        parse_wav(buffer.getvalue())
    with pytest.raises(AudioError, match="not a PCM WAV"):
        parse_wav(b"RIFF....garbage")
    with pytest.raises(AudioError, match="even"):
        wav_bytes(b"\x00", 16_000)


def test_mp3_decodes_back_to_the_same_duration(weather_16k: bytes) -> None:
    pcm = weather_16k[: 24_000 * 2]  # 1.5 s at 16 kHz
    data = mp3_bytes(pcm, 16_000)
    container = av.open(io.BytesIO(data), mode="r")
    try:
        samples = sum(int(frame.samples) for frame in container.decode(audio=0))
    finally:
        container.close()
    # LAME adds encoder delay and padding; the duration must still be right within ~0.1 s.
    assert abs(samples / 16_000 - 1.5) < 0.1


def test_mp3_refuses_rates_and_odd_pcm() -> None:
    with pytest.raises(AudioError, match="MP3 cannot carry"):
        mp3_bytes(bytes(100), 15_000)
    with pytest.raises(AudioError, match="even"):
        mp3_bytes(bytes(101), 16_000)
