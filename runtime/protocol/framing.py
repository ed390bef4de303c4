"""Binary framing of the device socket: xiaozhi protocol versions 1, 2 and 3.

All multi-byte fields are big-endian (firmware `protocol.h`):

- v1: the whole binary message is one Opus packet;
- v2: `version u16, type u16, reserved u32, timestamp_ms u32, payload_size u32`, payload;
- v3: `type u8, reserved u8, payload_size u16`, payload.

`type` is 0 for Opus audio and 1 for JSON. Parsing is liberal (any legal Opus
packet, header fields we do not use are ignored) and never raises; serializing
is strict and raises `ValueError` only for a programming error (a frame the
version cannot carry).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, Protocol

from runtime.protocol.errors import CloseCode, ProtocolError
from runtime.protocol.opus_packet import inspect_opus_packet

SUPPORTED_VERSIONS: Final = (1, 2, 3)
DEFAULT_VERSION: Final = 1
# Far above any legal Opus packet (48 x 1275 bytes worst case is ~61 KiB, real
# 60 ms voice packets are < 500 bytes) and above our JSON limit.
MAX_FRAME_BYTES: Final = 64 * 1024

_V2_HEADER = struct.Struct(">HHIII")
_V3_HEADER = struct.Struct(">BBH")
_VERSION_TEXT = re.compile(r"\s*v?\s*(\d+)(?:\.0*)?\s*$", re.IGNORECASE)


class FrameKind(IntEnum):
    AUDIO = 0
    JSON = 1


@dataclass(frozen=True, slots=True)
class Frame:
    kind: FrameKind
    payload: bytes
    timestamp_ms: int = 0


def coerce_version(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str | bytes):
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        match = _VERSION_TEXT.match(text)
        number = int(match.group(1)) if match and len(match.group(1)) < 4 else None
    return number if number in SUPPORTED_VERSIONS else None


def negotiate_version(header: str | None, hello_version: object = None) -> int:
    """Pick the binary protocol version from `Protocol-Version` and `hello.version`.

    The firmware states the same number in both. The hello wins when it holds
    a supported version because it is the device's own, later statement (and
    the only one a client that cannot set headers can make); then the header;
    then version 1, the firmware default. Values such as " 2", "2.0", "v3" or
    2.0 are accepted; anything unsupported is ignored.
    """
    for candidate in (hello_version, header):
        version = coerce_version(candidate)
        if version is not None:
            return version
    return DEFAULT_VERSION


class Framing(Protocol):
    version: int

    def parse(self, data: bytes) -> Frame | ProtocolError: ...

    def serialize(self, frame: Frame) -> bytes: ...


def _too_big(size: int) -> ProtocolError:
    return ProtocolError(f"binary frame of {size} bytes is too large", CloseCode.MESSAGE_TOO_BIG)


def _size_mismatch(version: str, declared: int, actual: int) -> ProtocolError:
    return ProtocolError(
        f"{version} header declares {declared} payload bytes, frame has {actual}",
        CloseCode.PROTOCOL_ERROR,
    )


def _checked(kind: int, payload: bytes, timestamp_ms: int) -> Frame | ProtocolError:
    if kind == FrameKind.AUDIO:
        info = inspect_opus_packet(payload)
        if isinstance(info, ProtocolError):
            return info
        return Frame(FrameKind.AUDIO, payload, timestamp_ms)
    if kind == FrameKind.JSON:
        return Frame(FrameKind.JSON, payload, timestamp_ms)
    return ProtocolError(f"unknown binary frame type {kind}")


def _check_outgoing(frame: Frame, limit: int) -> None:
    if len(frame.payload) > limit:
        raise ValueError(f"payload of {len(frame.payload)} bytes exceeds the frame limit")


class V1Framing:
    """Raw Opus packets; JSON travels only in text messages."""

    version = 1

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes

    def parse(self, data: bytes) -> Frame | ProtocolError:
        if len(data) > self.max_frame_bytes:
            return _too_big(len(data))
        return _checked(FrameKind.AUDIO, bytes(data), 0)

    def serialize(self, frame: Frame) -> bytes:
        if frame.kind != FrameKind.AUDIO:
            raise ValueError("protocol v1 carries only audio in binary messages")
        _check_outgoing(frame, self.max_frame_bytes)
        return frame.payload


class V2Framing:
    """16-byte header with a timestamp (used by server-side AEC)."""

    version = 2
    header_size = _V2_HEADER.size

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes

    def parse(self, data: bytes) -> Frame | ProtocolError:
        if len(data) > self.max_frame_bytes + self.header_size:
            return _too_big(len(data))
        if len(data) < self.header_size:
            return ProtocolError("truncated v2 frame header", CloseCode.PROTOCOL_ERROR)
        _version, kind, _reserved, timestamp_ms, size = _V2_HEADER.unpack_from(data)
        if size != len(data) - self.header_size:
            return _size_mismatch("v2", size, len(data) - self.header_size)
        return _checked(kind, bytes(data[self.header_size :]), timestamp_ms)

    def serialize(self, frame: Frame) -> bytes:
        _check_outgoing(frame, self.max_frame_bytes)
        header = _V2_HEADER.pack(
            2, int(frame.kind), 0, frame.timestamp_ms & 0xFFFFFFFF, len(frame.payload)
        )
        return header + frame.payload


class V3Framing:
    """4-byte header: type, reserved, u16 size."""

    version = 3
    header_size = _V3_HEADER.size

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        # The u16 size field caps a v3 payload whatever the configured limit.
        self.max_frame_bytes = min(max_frame_bytes, 0xFFFF)

    def parse(self, data: bytes) -> Frame | ProtocolError:
        if len(data) > self.max_frame_bytes + self.header_size:
            return _too_big(len(data))
        if len(data) < self.header_size:
            return ProtocolError("truncated v3 frame header", CloseCode.PROTOCOL_ERROR)
        kind, _reserved, size = _V3_HEADER.unpack_from(data)
        if size != len(data) - self.header_size:
            return _size_mismatch("v3", size, len(data) - self.header_size)
        return _checked(kind, bytes(data[self.header_size :]), 0)

    def serialize(self, frame: Frame) -> bytes:
        _check_outgoing(frame, self.max_frame_bytes)
        return _V3_HEADER.pack(int(frame.kind), 0, len(frame.payload)) + frame.payload


def framing_for(version: int, max_frame_bytes: int = MAX_FRAME_BYTES) -> Framing:
    """The framing of a negotiated version (see `negotiate_version`)."""
    if version == 2:
        return V2Framing(max_frame_bytes)
    if version == 3:
        return V3Framing(max_frame_bytes)
    if version == 1:
        return V1Framing(max_frame_bytes)
    raise ValueError(f"unsupported protocol version {version!r}")
