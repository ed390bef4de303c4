"""Opus packet sanity check (RFC 6716 §3.1–3.4), without decoding.

The framing layer cannot decode audio, but it can tell an Opus packet from
random bytes: the TOC byte and the frame-count code constrain the length
exactly (rules R1–R7 of §3.4). Checking that here lets the runtime drop junk
before it reaches a native decoder, and accept packets of every legal
duration (2.5–120 ms) rather than only the firmware's 60 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.protocol.errors import ProtocolError

MAX_FRAME_BYTES = 1275  # R2: no frame may exceed this (§3.2.1)
MAX_PACKET_MS = 120.0  # R5: a packet never lasts longer than this
MAX_FRAMES = 48  # code 3: 48 frames of 2.5 ms = 120 ms

# Frame duration in tenths of a millisecond, indexed by the TOC config (§3.1).
_SILK_TENTHS = (100, 200, 400, 600)
_HYBRID_TENTHS = (100, 200)
_CELT_TENTHS = (25, 50, 100, 200)


@dataclass(frozen=True, slots=True)
class OpusPacketInfo:
    """What the TOC byte and the framing say about one packet."""

    config: int
    stereo: bool
    frame_count: int
    frame_ms: float

    @property
    def duration_ms(self) -> float:
        return self.frame_count * self.frame_ms


def frame_duration_tenths(config: int) -> int:
    """Duration of one frame, in 0.1 ms, for a TOC configuration 0..31."""
    if config < 12:
        return _SILK_TENTHS[config % 4]
    if config < 16:
        return _HYBRID_TENTHS[config % 2]
    return _CELT_TENTHS[config % 4]


def _frame_length(data: bytes, pos: int) -> tuple[int, int] | None:
    """Decode a 1- or 2-byte frame length at `pos` -> (length, next pos)."""
    if pos >= len(data):
        return None
    first = data[pos]
    if first < 252:
        return first, pos + 1
    if pos + 1 >= len(data):
        return None
    return first + 4 * data[pos + 1], pos + 2


def inspect_opus_packet(data: bytes) -> OpusPacketInfo | ProtocolError:
    """Validate `data` as one Opus packet; never raises."""
    size = len(data)
    if size == 0:  # R1
        return ProtocolError("empty audio packet")
    toc = data[0]
    config, stereo, code = toc >> 3, bool(toc & 0x04), toc & 0x03
    tenths = frame_duration_tenths(config)
    frame_ms = tenths / 10
    if code == 0:
        if size - 1 > MAX_FRAME_BYTES:  # R2
            return ProtocolError("opus frame longer than 1275 bytes")
        return OpusPacketInfo(config, stereo, 1, frame_ms)
    if code == 1:
        if (size - 1) % 2:  # R3
            return ProtocolError("opus code-1 packet with an odd payload")
        if (size - 1) // 2 > MAX_FRAME_BYTES:
            return ProtocolError("opus frame longer than 1275 bytes")
        return OpusPacketInfo(config, stereo, 2, frame_ms)
    if code == 2:
        decoded = _frame_length(data, 1)
        if decoded is None:  # R4
            return ProtocolError("opus code-2 packet truncated")
        first_len, pos = decoded
        if first_len > size - pos:
            return ProtocolError("opus code-2 frame length exceeds the packet")
        # A coded length is at most 255 + 4 * 255 = 1275; only the implicit one can exceed.
        if size - pos - first_len > MAX_FRAME_BYTES:
            return ProtocolError("opus frame longer than 1275 bytes")
        return OpusPacketInfo(config, stereo, 2, frame_ms)
    return _inspect_code3(data, config, stereo, tenths)


def _inspect_code3(
    data: bytes, config: int, stereo: bool, tenths: int
) -> OpusPacketInfo | ProtocolError:
    size = len(data)
    if size < 2:  # R6/R7 need the frame-count byte
        return ProtocolError("opus code-3 packet truncated")
    count_byte = data[1]
    vbr, padded, count = bool(count_byte & 0x80), bool(count_byte & 0x40), count_byte & 0x3F
    if count == 0 or count * tenths > MAX_PACKET_MS * 10:  # R5
        return ProtocolError("opus code-3 packet with an illegal frame count")
    pos, padding = 2, 0
    if padded:
        while True:
            if pos >= size:
                return ProtocolError("opus padding length truncated")
            value = data[pos]
            pos += 1
            padding += 254 if value == 255 else value
            if value != 255:
                break
    available = size - pos - padding
    if available < 0:
        return ProtocolError("opus padding exceeds the packet")
    if vbr:
        total = 0
        for _ in range(count - 1):
            decoded = _frame_length(data, pos)
            if decoded is None:
                return ProtocolError("opus frame lengths truncated")
            length, pos = decoded
            total += length
        remaining = size - pos - padding - total
        if remaining < 0:  # R7
            return ProtocolError("opus frame lengths exceed the packet")
        if remaining > MAX_FRAME_BYTES:
            return ProtocolError("opus frame longer than 1275 bytes")
    else:
        if available % count:  # R6
            return ProtocolError("opus CBR packet not divisible into its frames")
        if available // count > MAX_FRAME_BYTES:
            return ProtocolError("opus frame longer than 1275 bytes")
    return OpusPacketInfo(config, stereo, count, tenths / 10)
