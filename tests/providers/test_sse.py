"""The Sans-I/O SSE parser: any split of the bytes gives the same events."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.providers.sse import SseError, SseEvent, SseParser

STREAM = (
    b": keep-alive comment\r\n"
    b"event: response.output_text.delta\r\n"
    b'data: {"delta":"Hel"}\r\n'
    b"\r\n"
    b'data: {"a":1}\n'
    b'data: {"b":2}\n'
    b"\n"
    b"data:no-space\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SseEvent("response.output_text.delta", '{"delta":"Hel"}'),
    SseEvent("message", '{"a":1}\n{"b":2}'),
    SseEvent("message", "no-space"),
    SseEvent("message", "[DONE]"),
]


def parse(pieces: list[bytes]) -> list[SseEvent]:
    parser = SseParser()
    events: list[SseEvent] = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.finish()


def test_whole_stream() -> None:
    assert parse([STREAM]) == EXPECTED


def test_byte_by_byte() -> None:
    assert parse([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    assert parse([STREAM[a:b] for a, b in itertools.pairwise(points)]) == EXPECTED


def test_unterminated_last_event_is_flushed() -> None:
    assert parse([b'data: {"x":1}']) == [SseEvent("message", '{"x":1}')]


def test_oversized_event_is_an_error() -> None:
    with pytest.raises(SseError):
        SseParser().feed(b"data: " + b"x" * (1 << 20) + b"x\n")
    with pytest.raises(SseError):  # no line end ever arrives
        SseParser().feed(b"data: " + b"x" * (1 << 20))
