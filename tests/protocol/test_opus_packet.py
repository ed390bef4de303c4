"""RFC 6716 packet checks, against real libopus output and libopus' own parser."""

from __future__ import annotations

import ctypes
import math
import struct

import opuslib_next
import opuslib_next.api
import opuslib_next.api.decoder
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.audio.opus import OpusEncoder
from runtime.protocol.errors import ProtocolError
from runtime.protocol.opus_packet import (
    OpusPacketInfo,
    frame_duration_tenths,
    inspect_opus_packet,
)


@pytest.mark.parametrize("rate", [16_000, 24_000, 48_000])
@pytest.mark.parametrize("frame_ms", [2.5, 5, 10, 20, 40, 60, 80, 100, 120])
def test_every_legal_duration_from_the_real_encoder(rate: int, frame_ms: float) -> None:
    encoder = OpusEncoder(rate, frame_ms)
    try:
        samples = encoder.frame_samples
        tone = [int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(samples)]
        packet = encoder.encode(struct.pack(f"<{samples}h", *tone))
    finally:
        encoder.close()
    info = inspect_opus_packet(packet)
    assert isinstance(info, OpusPacketInfo), info
    assert info.duration_ms == pytest.approx(frame_ms)


@pytest.mark.parametrize(
    ("packet", "frames", "duration"),
    [
        (bytes([0x58]), 1, 60.0),  # code 0, SILK WB 60 ms, empty (DTX) frame
        (bytes([0x58, 1, 2, 3]), 1, 60.0),
        (bytes([0x01]), 2, 20.0),  # code 1, two empty 10 ms SILK frames
        (bytes([0x79, 1, 2]), 2, 40.0),  # code 1, config 15: 2 x hybrid FB 20 ms
        (bytes([0x02, 1, 9, 8]), 2, 20.0),  # code 2: first frame 1 byte, second 1 byte
        (bytes([0x02, 252, 0]) + bytes(252), 2, 20.0),  # two-byte length 252
        (bytes([0xFB, 0x03]) + bytes(30), 3, 60.0),  # code 3 CBR, 3 x 20 ms CELT
        (bytes([0xFB, 0x82, 5]) + bytes(8), 2, 40.0),  # code 3 VBR: 5 + 3 bytes
        (bytes([0xFB, 0x42, 2]) + bytes(4) + bytes(2), 2, 40.0),  # CBR with 2 bytes padding
        (bytes([0xFB, 0x42, 255, 0]) + bytes(254), 2, 40.0),  # padding 254 via 255,0
        (bytes([0xE3, 0x30]) + bytes(0), 48, 120.0),  # 48 x 2.5 ms empty frames
    ],
)
def test_literal_packets(packet: bytes, frames: int, duration: float) -> None:
    info = inspect_opus_packet(packet)
    assert isinstance(info, OpusPacketInfo), info
    assert info.frame_count == frames
    assert info.duration_ms == pytest.approx(duration)


@pytest.mark.parametrize(
    ("packet", "fragment"),
    [
        (b"", "empty"),
        (bytes([0x58]) + bytes(1276), "longer than 1275"),  # R2
        (bytes([0x01, 7]), "odd payload"),  # R3
        (bytes([0x01]) + bytes(2552), "longer than 1275"),
        (bytes([0x02]), "truncated"),  # R4
        (bytes([0x02, 253]), "truncated"),
        (bytes([0x02, 9, 1]), "exceeds the packet"),
        (bytes([0x02, 0]) + bytes(1276), "longer than 1275"),
        (bytes([0x03]), "truncated"),
        (bytes([0x03, 0x00]), "illegal frame count"),  # R5: zero frames
        (bytes([0x5B, 0x03]), "illegal frame count"),  # 3 x 60 ms = 180 ms
        (bytes([0xFB, 0x41]), "padding length truncated"),
        (bytes([0xFB, 0x41, 9]), "padding exceeds"),
        (bytes([0xFB, 0x03, 1]), "not divisible"),  # R6
        (bytes([0xFB, 0x01]) + bytes(1276), "longer than 1275"),
        (bytes([0xFB, 0x83]), "lengths truncated"),  # R7
        (bytes([0xFB, 0x82, 9, 1]), "exceed the packet"),
        (bytes([0xFB, 0x82, 0]) + bytes(1276), "longer than 1275"),
    ],
)
def test_illegal_packets(packet: bytes, fragment: str) -> None:
    result = inspect_opus_packet(packet)
    assert isinstance(result, ProtocolError)
    assert fragment in result.message
    assert result.close_code is None


def test_frame_durations_by_config() -> None:
    assert [frame_duration_tenths(c) for c in (0, 3, 12, 13, 14, 16, 19, 31)] == [
        100,
        600,
        100,
        200,
        100,
        25,
        200,
        200,
    ]


_INVALID_PACKET = -4


class _LibopusParser:
    """libopus' own packet parser, reached through a 48 kHz stereo decode."""

    def __init__(self) -> None:
        self.state = opuslib_next.api.decoder.create_state(48_000, 2)
        self.samples = 5760
        self.buffer = (ctypes.c_int16 * (self.samples * 2))()
        self.pointer = ctypes.cast(self.buffer, opuslib_next.api.c_int16_pointer)

    def rejects(self, packet: bytes) -> bool:
        result = opuslib_next.api.decoder.libopus_decode(
            self.state, packet, len(packet), self.pointer, self.samples, 0
        )
        return bool(result == _INVALID_PACKET)


_PARSER = _LibopusParser()


@settings(max_examples=400, deadline=None)
@given(
    toc=st.integers(0, 255),
    second=st.integers(0, 255),
    rest=st.binary(max_size=40) | st.binary(min_size=1270, max_size=1300),
)
def test_agrees_with_libopus_on_validity(toc: int, second: int, rest: bytes) -> None:
    packet = bytes([toc, second]) + rest
    verdict = inspect_opus_packet(packet)
    assert isinstance(verdict, ProtocolError) == _PARSER.rejects(packet)
