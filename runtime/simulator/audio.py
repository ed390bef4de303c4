"""Audio in and out of the simulated device: 16 kHz Opus up, 24 kHz Opus down."""

from __future__ import annotations

from pathlib import Path

from runtime.audio.containers import read_wav, wav_bytes
from runtime.audio.errors import AudioError
from runtime.audio.opus import OPUS_RATES, OpusDecoder, OpusEncoder, PcmFramer
from runtime.audio.resample import resample
from runtime.simulator.errors import AudioInputError

UPLINK_RATE = 16_000
FRAME_MS = 60
FRAME_BYTES = UPLINK_RATE * FRAME_MS // 1000 * 2


def load_wav_16k(path: str | Path) -> bytes:
    """A WAV file as PCM16 mono 16 kHz (any rate, mono or stereo in)."""
    try:
        pcm, rate = read_wav(path)
    except (OSError, AudioError) as exc:
        raise AudioInputError(f"cannot read {path}: {exc}") from exc
    return pcm if rate == UPLINK_RATE else resample(pcm, rate, UPLINK_RATE)


def synthesize_16k(text: str) -> bytes:
    """`text` spoken by the local espeak-ng voice, PCM16 mono 16 kHz."""
    from runtime.audio.synthetic import speech_pcm

    try:
        return speech_pcm(text, UPLINK_RATE, lead_ms=120, tail_ms=0)
    except Exception as exc:  # espeak-ng missing or failing: a clear message, not a trace
        raise AudioInputError(f"cannot synthesise speech locally: {exc}") from exc


def write_wav(path: str | Path, pcm: bytes, rate: int) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(wav_bytes(pcm, rate))
    return target


class Uplink:
    """PCM16 16 kHz -> 60 ms Opus packets, like the firmware's audio service."""

    def __init__(self) -> None:
        self._encoder = OpusEncoder(UPLINK_RATE, FRAME_MS)
        self._framer = PcmFramer(UPLINK_RATE, FRAME_MS)

    def packets(self, pcm: bytes) -> list[bytes]:
        frames = self._framer.push(pcm) + self._framer.flush(pad=True)
        return [self._encoder.encode(frame) for frame in frames]

    def close(self) -> None:
        self._encoder.close()


class Downlink:
    """The reply's Opus packets -> PCM16 at the rate the server hello announced."""

    def __init__(self, rate: int = 24_000) -> None:
        self.rate = rate if rate in OPUS_RATES else 24_000
        self._decoder = OpusDecoder(self.rate)
        self.errors = 0

    def decode(self, packet: bytes) -> bytes:
        try:
            return self._decoder.decode(packet)
        except AudioError:
            self.errors += 1
            return b""

    def reset(self) -> None:
        self._decoder.reset()

    def close(self) -> None:
        self._decoder.close()
