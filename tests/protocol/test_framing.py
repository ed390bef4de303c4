"""Framing v1/v2/v3: round trips on literal bytes, version negotiation, malformed frames."""

from __future__ import annotations

import pytest

from runtime.protocol.errors import CloseCode, ProtocolError
from runtime.protocol.framing import (
    MAX_FRAME_BYTES,
    Frame,
    FrameKind,
    V1Framing,
    V2Framing,
    V3Framing,
    coerce_version,
    framing_for,
    negotiate_version,
)

OPUS = bytes([0x58, 0x0B, 0xE4, 0xC1, 0x36])  # TOC 60 ms SILK WB + 4 payload bytes
JSON = b'{"type":"abort"}'


@pytest.mark.parametrize(
    ("version", "frame", "wire"),
    [
        (1, Frame(FrameKind.AUDIO, OPUS), OPUS),
        (
            2,
            Frame(FrameKind.AUDIO, OPUS, 1234),
            b"\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x04\xd2\x00\x00\x00\x05" + OPUS,
        ),
        (
            2,
            Frame(FrameKind.JSON, JSON, 0),
            b"\x00\x02\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10" + JSON,
        ),
        (3, Frame(FrameKind.AUDIO, OPUS), b"\x00\x00\x00\x05" + OPUS),
        (3, Frame(FrameKind.JSON, JSON), b"\x01\x00\x00\x10" + JSON),
    ],
)
def test_round_trip_on_literal_bytes(version: int, frame: Frame, wire: bytes) -> None:
    framing = framing_for(version)
    assert framing.version == version
    assert framing.serialize(frame) == wire
    assert framing.parse(wire) == frame


def test_v2_timestamp_wraps_to_u32_and_ignores_version_and_reserved_fields() -> None:
    framing = V2Framing()
    wire = framing.serialize(Frame(FrameKind.AUDIO, OPUS, 2**32 + 7))
    assert wire[8:12] == b"\x00\x00\x00\x07"
    # A client that fills version/reserved differently is still understood.
    odd = b"\x00\x09\x00\x00\xff\xff\xff\xff" + wire[8:]
    assert framing.parse(odd) == Frame(FrameKind.AUDIO, OPUS, 7)


def test_v3_ignores_reserved_byte() -> None:
    assert V3Framing().parse(b"\x00\x7f\x00\x05" + OPUS) == Frame(FrameKind.AUDIO, OPUS)


def test_parse_accepts_bytearray_and_memoryview() -> None:
    assert V1Framing().parse(bytearray(OPUS)) == Frame(FrameKind.AUDIO, OPUS)  # type: ignore[arg-type]
    wire = b"\x00\x00\x00\x05" + OPUS
    parsed = V3Framing().parse(memoryview(wire))  # type: ignore[arg-type]
    assert parsed == Frame(FrameKind.AUDIO, OPUS)


@pytest.mark.parametrize(
    ("framing", "wire", "close_code", "fragment"),
    [
        (V2Framing(), b"\x00\x02\x00\x00\x00", CloseCode.PROTOCOL_ERROR, "truncated v2"),
        (V3Framing(), b"\x00\x00\x00", CloseCode.PROTOCOL_ERROR, "truncated v3"),
        (
            V2Framing(),
            b"\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09" + OPUS,
            CloseCode.PROTOCOL_ERROR,
            "declares 9 payload bytes, frame has 5",
        ),
        (V3Framing(), b"\x00\x00\x00\x02" + OPUS, CloseCode.PROTOCOL_ERROR, "declares 2"),
        (V3Framing(), b"\x07\x00\x00\x05" + OPUS, None, "unknown binary frame type 7"),
        (V2Framing(), V2Framing().serialize(Frame(FrameKind.AUDIO, b"")), None, "empty audio"),
        (V1Framing(), b"", None, "empty audio"),
        (V1Framing(), b"\x01\x00", None, "odd payload"),  # code 1 needs an even payload
        (V1Framing(), bytes(MAX_FRAME_BYTES + 1), CloseCode.MESSAGE_TOO_BIG, "too large"),
        (V2Framing(), bytes(MAX_FRAME_BYTES + 17), CloseCode.MESSAGE_TOO_BIG, "too large"),
        (V3Framing(), bytes(0xFFFF + 5), CloseCode.MESSAGE_TOO_BIG, "too large"),
    ],
)
def test_malformed_frames_become_protocol_errors(
    framing: V1Framing | V2Framing | V3Framing,
    wire: bytes,
    close_code: int | None,
    fragment: str,
) -> None:
    result = framing.parse(wire)
    assert isinstance(result, ProtocolError)
    assert result.close_code == close_code
    assert result.fatal is (close_code is not None)
    assert fragment in result.message


def test_non_opus_audio_in_a_valid_v3_frame_is_dropped_not_fatal() -> None:
    junk = b"\x03\x00"  # code-3 packet with a frame count of 0 (RFC 6716 R5)
    result = V3Framing().parse(b"\x00\x00\x00\x02" + junk)
    assert isinstance(result, ProtocolError)
    assert result.close_code is None


def test_configured_limit_applies() -> None:
    small = V1Framing(max_frame_bytes=4)
    result = small.parse(OPUS)
    assert isinstance(result, ProtocolError)
    assert result.close_code == CloseCode.MESSAGE_TOO_BIG
    with pytest.raises(ValueError, match="exceeds"):
        small.serialize(Frame(FrameKind.AUDIO, OPUS))


def test_serialize_is_strict() -> None:
    with pytest.raises(ValueError, match="only audio"):
        V1Framing().serialize(Frame(FrameKind.JSON, JSON))
    with pytest.raises(ValueError, match="exceeds"):
        V3Framing().serialize(Frame(FrameKind.AUDIO, bytes(0x10000)))
    with pytest.raises(ValueError, match="unsupported protocol version"):
        framing_for(4)


@pytest.mark.parametrize(
    ("header", "hello", "expected"),
    [
        (None, None, 1),
        ("1", None, 1),
        ("2", None, 2),
        (" 3 ", None, 3),
        ("v2", None, 2),
        ("2.0", None, 2),
        ("4", None, 1),
        ("two", None, 1),
        ("", None, 1),
        ("2", 3, 3),  # the hello is the device's own, later statement
        ("2", "3", 3),
        ("3", 9, 3),  # an unsupported hello version falls back to the header
        ("3", True, 3),  # booleans are not versions
        (None, 2.0, 2),
        (None, 2.5, 1),
        (None, [2], 1),
        (None, b"3", 3),
        ("99999999999999999999", None, 1),
    ],
)
def test_negotiate_version(header: str | None, hello: object, expected: int) -> None:
    assert negotiate_version(header, hello) == expected


def test_coerce_version_returns_none_for_unsupported() -> None:
    assert coerce_version(0) is None
    assert coerce_version("3") == 3
