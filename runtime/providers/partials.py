"""Live partial transcripts for recognisers that only decode a whole file.

Local Whisper and OpenAI's transcription endpoint give one transcript per
request. To show live text (and to let barge-in read the words of a candidate
interruption), `interim` re-decodes the growing utterance while it is heard:

- at a bounded rate: a new decode once `interval_ms` more audio has arrived
  (and only after `min_ms` of audio, which cannot hold a word before);
- at most one decode in flight per utterance: a decode that is still running
  when the next one is due simply makes that one wait;
- skipped under load: a process-wide `PartialBudget` caps the decodes in
  flight across sessions; when it is spent the partial is skipped, never
  queued, so partials can never delay anyone's final transcript.

Each partial is a `Transcript(is_final=False)`; an empty or unchanged text is
not repeated. The caller decodes the final transcript itself once the input
ends, and an abandoned partial (the utterance ended meanwhile) is discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from runtime.pipeline.errors import ProviderError
from runtime.pipeline.interfaces import UPLINK_RATE, Transcript

BYTES_PER_MS = UPLINK_RATE * 2 // 1000


@dataclass(frozen=True, slots=True)
class PartialPolicy:
    interval_ms: int = 500
    min_ms: int = 300


class PartialBudget:
    """Partial decodes in flight across the process; `limit` 0 turns partials off."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0
        self.started = 0
        self.skipped = 0

    def try_acquire(self) -> bool:
        if self.running >= self.limit:
            self.skipped += 1
            return False
        self.running += 1
        self.started += 1
        return True

    def release(self) -> None:
        self.running = max(0, self.running - 1)


Decode = Callable[[bytes], Awaitable[str]]


async def interim(
    audio: AsyncIterable[bytes],
    buffer: bytearray,
    *,
    decode: Decode,
    policy: PartialPolicy,
    budget: PartialBudget,
    convert: Callable[[bytes], bytes] = bytes,
    limit_bytes: int | None = None,
) -> AsyncIterator[Transcript]:
    """Fill `buffer` from `audio` (through `convert`, up to `limit_bytes`) and yield
    interim transcripts of it meanwhile; returns when `audio` ends."""
    results: asyncio.Queue[str | None] = asyncio.Queue()
    in_flight: asyncio.Task[None] | None = None
    decoded_at = 0  # buffer length the last decode started at

    async def run(pcm: bytes) -> None:
        try:
            text = await decode(pcm)
        except ProviderError:
            return  # a failed partial is no transcript; the final will tell
        finally:
            budget.release()
        results.put_nowait(text.strip())

    async def pump() -> None:
        nonlocal in_flight, decoded_at
        try:
            async for chunk in audio:
                # Keep consuming past the limit (the sender must not block), stop storing.
                if limit_bytes is None or len(buffer) < limit_bytes:
                    buffer.extend(convert(chunk))
                due = len(buffer) >= max(policy.min_ms * BYTES_PER_MS, 1) and (
                    len(buffer) - decoded_at >= policy.interval_ms * BYTES_PER_MS
                )
                if due and (in_flight is None or in_flight.done()) and budget.try_acquire():
                    decoded_at = len(buffer)
                    in_flight = asyncio.create_task(run(bytes(buffer)), name="stt-partial")
        finally:
            results.put_nowait(None)

    pumping = asyncio.create_task(pump(), name="stt-audio")
    last = ""
    try:
        while True:
            text = await results.get()
            if text is None:
                break
            if text and text != last:
                last = text
                yield Transcript(text=text, is_final=False)
        await pumping  # re-raises what the audio source raised
    finally:
        pumping.cancel()
        if in_flight is not None and not in_flight.done():
            in_flight.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
