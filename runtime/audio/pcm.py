"""Re-cutting a PCM16 byte stream into whole samples.

Providers stream raw PCM16 over HTTP, and the network cuts it wherever it
likes: a piece may end in the middle of a sample. The resampler and the Opus
encoder need whole 16-bit samples, so an odd trailing byte waits for its pair.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator


async def whole_samples(pieces: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Each piece as it arrives, trimmed to whole samples (a trailing odd byte is
    carried into the next piece; one left at the end is half a sample, dropped)."""
    carry = b""
    async for piece in pieces:
        data = carry + piece if carry else piece
        even = len(data) - len(data) % 2
        carry = data[even:]
        if even:
            yield data[:even]
