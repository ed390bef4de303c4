"""Opus codec for the device path, on the libopus bundled with opuslib_next.

Uplink: devices send 16 kHz mono packets of 60 ms, but a packet may legally
carry 2.5-120 ms, so every decode offers room for the 120 ms maximum. Downlink:
24 kHz mono, 60 ms frames (1440 samples), cut from the TTS stream by
`PcmFramer`, the last frame zero-padded.

We call the opuslib_next ctypes bindings one level down from its `Decoder` /
`Encoder` classes so that (a) the output buffer is allocated once per codec
instead of per packet and copied out with `string_at` rather than through a
Python list, and (b) native state is freed deterministically by `close()`
rather than whenever the garbage collector runs `__del__`.
"""

from __future__ import annotations

import ctypes
from typing import Any

import opuslib_next
import opuslib_next.api
import opuslib_next.api.ctl
import opuslib_next.api.decoder
import opuslib_next.api.encoder

from runtime.audio.errors import AudioError

SAMPLE_WIDTH = 2
OPUS_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)
MAX_PACKET_MS = 120
# Chosen by measurement (`opendot bench audio`, [opus] table; speech, 24 kHz,
# 60 ms, voip, default bitrate, the bundled libopus): complexities 4 and 5 emit
# identical packets, as do 6-7 and 8-10. 5 costs about 0.6x of 10 per frame
# (about 650 vs 1100 us on the 2-core dev machine) for a reconstruction SNR only
# 0.09 dB lower and 1 % smaller packets; going down to 2-3 saves another quarter
# but loses 0.3-0.4 dB, and 0-1 lose about 1 dB. Encoding is the largest audio
# cost per stream, so the knee of the curve wins.
DEFAULT_COMPLEXITY = 5
# Legal frame durations for the encoder, in tenths of a millisecond.
_ENCODER_FRAME_TENTHS_MS = (25, 50, 100, 200, 400, 600, 800, 1000, 1200)
_MAX_PACKET_BYTES = 4000  # libopus' own recommendation for one packet


def _check_rate(sample_rate: int) -> None:
    if sample_rate not in OPUS_RATES:
        raise AudioError(f"Opus cannot run at {sample_rate} Hz; use one of {OPUS_RATES}")


class OpusDecoder:
    """One stream's decoder: Opus packets in, PCM16 mono at `sample_rate` out."""

    def __init__(self, sample_rate: int = 16_000) -> None:
        _check_rate(sample_rate)
        self.sample_rate = sample_rate
        self._max_samples = sample_rate * MAX_PACKET_MS // 1000
        self._buffer: ctypes.Array[ctypes.c_int16] | None = (ctypes.c_int16 * self._max_samples)()
        self._pointer: Any = ctypes.cast(self._buffer, opuslib_next.api.c_int16_pointer)
        try:
            self._state: Any = opuslib_next.api.decoder.create_state(sample_rate, 1)
        except opuslib_next.OpusError as exc:  # pragma: no cover - only on out-of-memory
            raise AudioError(f"cannot create an Opus decoder: {exc}") from exc

    @property
    def closed(self) -> bool:
        return self._state is None

    def decode(self, packet: bytes) -> bytes:
        """Decode one packet. An empty packet decodes to no audio (some clients
        send keep-alive frames); a corrupt one raises `AudioError`."""
        if self._state is None or self._buffer is None:
            raise AudioError("decoder is closed")
        if not packet:
            return b""
        samples = opuslib_next.api.decoder.libopus_decode(
            self._state, packet, len(packet), self._pointer, self._max_samples, 0
        )
        if samples < 0:
            raise AudioError(f"invalid Opus packet: {opuslib_next.OpusError(samples)}")
        return ctypes.string_at(self._buffer, samples * SAMPLE_WIDTH)

    def reset(self) -> None:
        if self._state is not None:
            opuslib_next.api.decoder.decoder_ctl(self._state, opuslib_next.api.ctl.reset_state)

    def close(self) -> None:
        """Free the native state now; further `decode` calls raise. Idempotent."""
        state, self._state = self._state, None
        self._buffer = None
        self._pointer = None
        if state is not None:
            opuslib_next.api.decoder.destroy(state)

    def __del__(self) -> None:
        # A safety net only: owners call close() so memory does not wait for the GC.
        # `_state` is missing when __init__ refused its arguments.
        if getattr(self, "_state", None) is not None:
            self.close()

    def __enter__(self) -> OpusDecoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class OpusEncoder:
    """One stream's encoder: exactly one frame of PCM16 mono in, one packet out."""

    def __init__(
        self,
        sample_rate: int = 24_000,
        frame_ms: float = 60,
        complexity: int = DEFAULT_COMPLEXITY,
        *,
        bitrate: int | None = None,
        application: str = "voip",
    ) -> None:
        _check_rate(sample_rate)
        if frame_ms * 10 not in _ENCODER_FRAME_TENTHS_MS:
            raise AudioError(f"Opus cannot encode {frame_ms} ms frames")
        if not 0 <= complexity <= 10:
            raise AudioError(f"Opus complexity must be 0..10, not {complexity}")
        if application not in opuslib_next.APPLICATION_TYPES_MAP:
            raise AudioError(f"unknown Opus application {application!r}")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.complexity = complexity
        self.frame_samples = round(sample_rate * frame_ms / 1000)
        self.frame_bytes = self.frame_samples * SAMPLE_WIDTH
        self._out = (ctypes.c_char * _MAX_PACKET_BYTES)()
        self._state: Any = opuslib_next.api.encoder.create_state(
            sample_rate, 1, opuslib_next.APPLICATION_TYPES_MAP[application]
        )
        encoder_ctl = opuslib_next.api.encoder.encoder_ctl
        encoder_ctl(self._state, opuslib_next.api.ctl.set_complexity, complexity)
        if bitrate is not None:
            encoder_ctl(self._state, opuslib_next.api.ctl.set_bitrate, bitrate)

    @property
    def closed(self) -> bool:
        return self._state is None

    def encode(self, pcm_frame: bytes) -> bytes:
        """Encode exactly one frame (`frame_bytes` long); use `PcmFramer` to cut them."""
        if self._state is None:
            raise AudioError("encoder is closed")
        if len(pcm_frame) != self.frame_bytes:
            raise AudioError(
                f"an Opus frame here is {self.frame_bytes} bytes of PCM16, not {len(pcm_frame)}"
            )
        pcm = (ctypes.c_int16 * self.frame_samples).from_buffer_copy(pcm_frame)
        size = opuslib_next.api.encoder.libopus_encode(
            self._state, pcm, self.frame_samples, self._out, _MAX_PACKET_BYTES
        )
        if size < 0:  # pragma: no cover - libopus only fails here on internal errors
            raise AudioError(f"Opus encode failed: {opuslib_next.OpusError(size)}")
        return self._out.raw[:size]

    def close(self) -> None:
        state, self._state = self._state, None
        if state is not None:
            opuslib_next.api.encoder.destroy(state)

    def __del__(self) -> None:
        if getattr(self, "_state", None) is not None:
            self.close()

    def __enter__(self) -> OpusEncoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PcmFramer:
    """Cuts a PCM16 byte stream of any chunk sizes into fixed frames."""

    def __init__(self, sample_rate: int = 24_000, frame_ms: float = 60) -> None:
        self.frame_bytes = round(sample_rate * frame_ms / 1000) * SAMPLE_WIDTH
        if self.frame_bytes <= 0:
            raise AudioError(f"empty frames at {sample_rate} Hz / {frame_ms} ms")
        self._pending = bytearray()

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)

    def push(self, pcm: bytes) -> list[bytes]:
        self._pending += pcm
        whole = len(self._pending) - len(self._pending) % self.frame_bytes
        if not whole:
            return []
        frames = [
            bytes(self._pending[i : i + self.frame_bytes])
            for i in range(0, whole, self.frame_bytes)
        ]
        del self._pending[:whole]
        return frames

    def flush(self, pad: bool = True) -> list[bytes]:
        """The remainder as a last frame, zero-padded to full length when `pad`
        (what the encoder needs), else as it is. Empty when nothing is pending."""
        if not self._pending:
            return []
        rest = bytes(self._pending)
        self._pending.clear()
        if pad:
            rest += bytes(self.frame_bytes - len(rest))
        return [rest]

    def reset(self) -> None:
        self._pending.clear()
