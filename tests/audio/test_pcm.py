"""`whole_samples`: PCM16 cut anywhere by the network comes out in whole samples."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from runtime.audio.pcm import whole_samples


async def _pieces(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _collect(parts: list[bytes]) -> list[bytes]:
    return [piece async for piece in whole_samples(_pieces(parts))]


async def test_an_odd_byte_waits_for_its_pair() -> None:
    assert await _collect([b"\x01\x02\x03", b"\x04", b"", b"\x05\x06"]) == [
        b"\x01\x02",
        b"\x03\x04",
        b"\x05\x06",
    ]


async def test_a_lone_trailing_byte_is_dropped() -> None:
    assert await _collect([b"\x01\x02\x03"]) == [b"\x01\x02"]
    assert await _collect([b"\x01"]) == []


@given(st.lists(st.binary(max_size=9), max_size=12))
def test_any_cut_gives_the_same_samples_in_even_pieces(parts: list[bytes]) -> None:
    out = asyncio.run(_collect(parts))
    whole = b"".join(parts)
    assert b"".join(out) == whole[: len(whole) - len(whole) % 2]
    assert all(piece and len(piece) % 2 == 0 for piece in out)
