from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import opuslib_next.api.decoder
import pytest

from runtime.audio.errors import AudioError
from runtime.audio.opus import OpusDecoder, OpusEncoder, PcmFramer


def _encode_all(pcm: bytes, rate: int, frame_ms: float) -> list[bytes]:
    framer = PcmFramer(rate, frame_ms)
    with OpusEncoder(rate, frame_ms) as encoder:
        return [encoder.encode(frame) for frame in framer.push(pcm) + framer.flush()]


def _rms(pcm: bytes) -> float:
    return float(np.sqrt(np.mean(np.frombuffer(pcm, "<i2").astype(np.float64) ** 2)))


def test_speech_round_trip_keeps_length_and_energy(weather_16k: bytes) -> None:
    packets = _encode_all(weather_16k, 16_000, 60)
    assert len(packets) == -(-len(weather_16k) // 1920)
    with OpusDecoder(16_000) as decoder:
        decoded = b"".join(decoder.decode(p) for p in packets)
    assert len(decoded) == len(packets) * 1920
    # A lossy codec: compare loudness, and check the waveform still correlates.
    assert _rms(decoded) == pytest.approx(_rms(weather_16k), rel=0.25)
    original = np.frombuffer(weather_16k, "<i2").astype(np.float64)
    restored = np.frombuffer(decoded, "<i2").astype(np.float64)[: len(original)]
    best = max(
        np.corrcoef(original[: len(original) - lag], restored[lag:])[0, 1] for lag in range(0, 200)
    )
    assert best > 0.6


@pytest.mark.parametrize("frame_ms", [2.5, 5, 10, 20, 40, 60, 80, 100, 120])
def test_decoder_accepts_every_legal_packet_duration(weather_16k: bytes, frame_ms: float) -> None:
    packets = _encode_all(weather_16k[:32_000], 16_000, frame_ms)
    with OpusDecoder(16_000) as decoder:
        sizes = {len(decoder.decode(p)) for p in packets}
    assert sizes == {round(16_000 * frame_ms / 1000) * 2}


def test_downlink_frames_are_1440_samples_at_24k() -> None:
    encoder = OpusEncoder()
    assert (encoder.sample_rate, encoder.frame_samples, encoder.frame_bytes) == (24_000, 1440, 2880)
    tone = (np.sin(np.arange(2880) * 2 * np.pi * 440 / 24_000) * 8000).astype("<i2").tobytes()
    packet = encoder.encode(tone[:2880])
    encoder.close()
    with OpusDecoder(24_000) as decoder:
        assert len(decoder.decode(packet)) == 2880


def test_garbage_and_empty_packets() -> None:
    with OpusDecoder() as decoder:
        with pytest.raises(AudioError, match="invalid Opus packet"):
            decoder.decode(b"\xff\xff\xff\x00not opus at all")
        assert decoder.decode(b"") == b""
        decoder.reset()
        # Still usable after a bad packet.
        packet = _encode_all(bytes(1920), 16_000, 60)[0]
        assert len(decoder.decode(packet)) == 1920


def test_closed_codecs_refuse_work_and_close_twice() -> None:
    decoder = OpusDecoder()
    decoder.close()
    decoder.close()
    decoder.reset()  # no-op once closed
    assert decoder.closed
    with pytest.raises(AudioError, match="closed"):
        decoder.decode(b"\x00")
    encoder = OpusEncoder(16_000, 20)
    encoder.close()
    encoder.close()
    assert encoder.closed
    with pytest.raises(AudioError, match="closed"):
        encoder.encode(bytes(640))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_rate": 22_050}, "cannot run at 22050"),
        ({"frame_ms": 30}, "30 ms frames"),
        ({"complexity": 11}, "complexity"),
        ({"application": "music"}, "application"),
    ],
)
def test_encoder_refuses_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AudioError, match=message):
        OpusEncoder(**kwargs)  # type: ignore[arg-type]


def test_decoder_refuses_bad_rate() -> None:
    with pytest.raises(AudioError, match="44100"):
        OpusDecoder(44_100)


def test_encoder_refuses_wrong_frame_length() -> None:
    with OpusEncoder(bitrate=16_000) as encoder, pytest.raises(AudioError, match="2880 bytes"):
        encoder.encode(bytes(2878))


def test_complexity_is_applied() -> None:
    with OpusEncoder(complexity=0) as low, OpusEncoder(complexity=10) as high:
        assert (low.complexity, high.complexity) == (0, 10)
        ctl = opuslib_next.api.ctl.get_complexity
        assert opuslib_next.api.encoder.encoder_ctl(low._state, ctl) == 0
        assert opuslib_next.api.encoder.encoder_ctl(high._state, ctl) == 10


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_ten_thousand_decoders_are_freed_by_close() -> None:
    # The closed decoders stay referenced, so only close() can have freed their
    # native state: leaking it would cost 10,000 x opus_decoder_get_size(1)
    # (about 180 MiB); the Python shells left behind cost a few MiB.
    state_size = opuslib_next.api.decoder.libopus_get_size(1)
    warmup = [OpusDecoder() for _ in range(200)]
    for decoder in warmup:
        decoder.close()
    gc.collect()
    before = _rss_bytes()
    kept = []
    for _ in range(10_000):
        decoder = OpusDecoder()
        decoder.close()
        kept.append(decoder)
    gc.collect()
    growth = _rss_bytes() - before
    assert growth < 10_000 * state_size / 4, f"RSS grew {growth / 2**20:.1f} MiB"


def test_framer_cuts_any_chunking_into_frames() -> None:
    framer = PcmFramer(24_000, 60)
    data = bytes(range(256)) * 40  # 10,240 bytes: 3 frames of 2880 and 1600 left
    frames: list[bytes] = []
    for start in range(0, len(data), 1000):
        frames += framer.push(data[start : start + 1000])
    assert [len(f) for f in frames] == [2880] * 3
    assert framer.pending_bytes == len(data) - 3 * 2880
    tail = framer.flush()
    assert len(tail) == 1 and len(tail[0]) == 2880
    assert b"".join(frames) + tail[0][: len(data) - 3 * 2880] == data
    assert tail[0][len(data) - 3 * 2880 :] == bytes(2880 - (len(data) - 3 * 2880))
    assert framer.flush() == []


def test_framer_flush_without_padding_and_reset() -> None:
    framer = PcmFramer(16_000, 20)
    assert framer.push(b"\x01\x02" * 10) == []
    assert framer.flush(pad=False) == [b"\x01\x02" * 10]
    framer.push(b"\x01\x02")
    framer.reset()
    assert framer.pending_bytes == 0
    with pytest.raises(AudioError):
        PcmFramer(100, 1)
