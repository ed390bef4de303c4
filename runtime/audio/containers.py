"""WAV and MP3 containers for PCM16 mono.

WAV is for fixtures, the simulator and speech made by espeak-ng; MP3 is the
browser's `chunked_file` delivery (each chunk a self-contained file that an
`<audio>` element can play).
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

from runtime.audio.errors import AudioError

# Sample rates MPEG-1/2/2.5 layer III can carry.
MP3_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    """A complete RIFF/WAVE file holding PCM16 mono `pcm` at `rate`."""
    if len(pcm) % 2:
        raise AudioError("PCM16 needs an even number of bytes")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def parse_wav(data: bytes) -> tuple[bytes, int]:
    """PCM16 mono and its rate from a WAV file's bytes; stereo is averaged to mono."""
    try:
        with wave.open(io.BytesIO(data), "rb") as source:
            channels = source.getnchannels()
            width = source.getsampwidth()
            rate = source.getframerate()
            frames = source.readframes(source.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"not a PCM WAV file: {exc}") from exc
    if width != 2:
        raise AudioError(f"only 16-bit WAV is supported, this one has {8 * width}-bit samples")
    if channels == 1:
        return frames, rate
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)
    mono = samples.astype(np.int32).mean(axis=1).round().astype("<i2")
    return mono.tobytes(), rate


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """`parse_wav` of a file on disk."""
    return parse_wav(Path(path).read_bytes())


def mp3_bytes(pcm: bytes, rate: int, bitrate_kbps: int = 64, quality: int = 7) -> bytes:
    """A self-contained MP3 file of PCM16 mono `pcm` (lameenc: about 120 us per
    60 ms at 24 kHz). `quality` is LAME's 0 (best, slowest) .. 9 (fastest)."""
    import lameenc  # imported here: only the browser's chunked_file delivery needs it

    if rate not in MP3_RATES:
        raise AudioError(f"MP3 cannot carry {rate} Hz; resample to one of {MP3_RATES}")
    if len(pcm) % 2:
        raise AudioError("PCM16 needs an even number of bytes")
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate_kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_quality(quality)
    return bytes(encoder.encode(pcm)) + bytes(encoder.flush())
