"""Fallback composites: an ordered list of providers that is itself a provider.

For each call (one turn), the first provider is asked; if it fails with a
`ProviderError` (or any unexpected exception) or, when a next provider exists,
produces nothing within the first-output timeout, it is closed and the next one
takes over. Once a provider has yielded anything, the call is committed to it:
the runtime may already have spoken or shown that output, so a later failure is
raised rather than papered over with a different provider's answer. When every
provider fails, the last error is raised so the runtime can speak its apology.

STT is special: its input is live audio. The composite records the audio the
failed provider consumed and replays it to the next one, so the start of the
utterance is not lost; once a transcript has been yielded the record is dropped.
The record is bounded in seconds (`REPLAY_MAX_S`): a provider that hears only
silence yields nothing, and a Dot in a quiet room used to grow the record by
the whole uplink rate (32 KiB/s per device) until the utterance ended. Past the
bound the record is dropped and the call is committed to the provider that has
the audio: if it fails later, the stage fails (an apology) rather than hand the
next provider an utterance without its start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Sequence
from typing import TypeVar

from runtime.pipeline.errors import ProviderBadResponse, ProviderError, ProviderTimeout
from runtime.pipeline.interfaces import (
    LLM,
    PCM_SAMPLE_WIDTH,
    STT,
    TTS,
    LlmOutput,
    LlmRequest,
    PcmChunk,
    SttOptions,
    Transcript,
    TtsOptions,
)
from runtime.pipeline.served import report_fallback, report_served

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P", STT, LLM, TTS)

# Audio kept for a fallback STT provider. A working provider's first interim result
# comes within a second or two of speech; five seconds of nothing is silence or a
# broken provider, and either way not worth 160 KiB per session.
REPLAY_MAX_S = 5.0


def _as_provider_error(name: str, exc: Exception) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    log.error("%s failed unexpectedly", name, exc_info=exc)
    return ProviderBadResponse(name, f"unexpected {type(exc).__name__}")


async def _aclose(stream: AsyncIterator[object]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # a failed provider may fail again while closing
            log.debug("closing a failed provider stream raised", exc_info=True)


async def _first_of(
    stream: AsyncIterator[T], name: str, timeout_s: float | None
) -> tuple[bool, T | None]:
    """(True, item) for the first item, (False, None) when the stream is empty."""
    try:
        if timeout_s is None:
            return True, await anext(stream)
        async with asyncio.timeout(timeout_s):
            return True, await anext(stream)
    except StopAsyncIteration:
        return False, None
    except TimeoutError:
        raise ProviderTimeout(name, f"no output within {timeout_s:g} s") from None


async def _run(
    stage: str,
    providers: Sequence[P],
    start: Callable[[P], AsyncIterator[T]],
    first_output_timeout_s: float | None,
    on_commit: Callable[[], None] | None = None,
    may_fall_back: Callable[[], bool] | None = None,
) -> AsyncGenerator[T, None]:
    """`may_fall_back()` False means the next provider can no longer take over (its
    input is gone): a failure before the first output is then final."""
    last_error: ProviderError | None = None
    for index, provider in enumerate(providers):
        has_next = index + 1 < len(providers)
        stream = start(provider)
        try:
            got, first = await _first_of(
                stream, provider.name, first_output_timeout_s if has_next else None
            )
        except Exception as exc:
            last_error = _as_provider_error(provider.name, exc)
            await _aclose(stream)
            if has_next and may_fall_back is not None and not may_fall_back():
                log.warning(
                    "%s failed after its replay bound; no fallback: %s", provider.name, last_error
                )
                raise last_error from None
            if has_next:
                log.warning(
                    "%s failed before any output, trying %s: %s",
                    provider.name,
                    providers[index + 1].name,
                    last_error,
                )
                report_fallback(stage, provider.name, providers[index + 1].name, str(last_error))
            continue
        report_served(stage, provider.name)
        if on_commit is not None:
            on_commit()
        try:
            if got:
                yield first  # type: ignore[misc]
                async for item in stream:
                    yield item
        finally:
            await _aclose(stream)
        return
    if last_error is None:
        raise ProviderBadResponse("fallback", "no provider is configured for this stage")
    raise last_error


def _names(providers: Sequence[STT] | Sequence[LLM] | Sequence[TTS]) -> str:
    return ">".join(p.name for p in providers)


class FallbackLLM:
    def __init__(self, providers: Sequence[LLM], *, first_output_timeout_s: float | None = None):
        self.providers = list(providers)
        self.first_output_timeout_s = first_output_timeout_s
        self.name = _names(self.providers)

    async def stream(self, request: LlmRequest) -> AsyncIterator[LlmOutput]:
        run = _run("llm", self.providers, lambda p: p.stream(request), self.first_output_timeout_s)
        try:
            async for delta in run:
                yield delta
        finally:
            await run.aclose()


class FallbackTTS:
    def __init__(self, providers: Sequence[TTS], *, first_output_timeout_s: float | None = None):
        self.providers = list(providers)
        self.first_output_timeout_s = first_output_timeout_s
        self.name = _names(self.providers)

    async def stream(self, text: str, options: TtsOptions) -> AsyncIterator[PcmChunk]:
        run = _run(
            "tts", self.providers, lambda p: p.stream(text, options), self.first_output_timeout_s
        )
        try:
            async for chunk in run:
                yield chunk
        finally:
            await run.aclose()


class _Replay:
    """Shares one live audio iterator between successive STT attempts.

    Reads from the source are shielded: a provider cancelled mid-read (its
    sender task torn down on failure) must not throw the cancellation into the
    runtime's audio source, which the next provider still needs.
    """

    def __init__(self, source: AsyncIterable[bytes], max_bytes: int) -> None:
        self._source = aiter(source)
        self._record: list[bytes] | None = []
        self._max = max_bytes
        self.recorded = 0  # bytes held in the record
        self.overflowed = False
        self._pending: asyncio.Future[bytes] | None = None
        self._ended = False

    def commit(self) -> None:
        self._record = None  # the current attempt keeps the audio; stop recording
        self.recorded = 0

    def may_fall_back(self) -> bool:
        return not self.overflowed

    async def _next(self) -> bytes:
        if self._pending is None:
            self._pending = asyncio.ensure_future(anext(self._source))
        pending = self._pending
        chunk = await asyncio.shield(pending)
        self._pending = None
        return chunk

    async def view(self) -> AsyncIterator[bytes]:
        for chunk in list(self._record or ()):
            yield chunk
        while not self._ended:
            try:
                chunk = await self._next()
            except StopAsyncIteration:
                self._pending = None
                self._ended = True
                return
            if self._record is not None:
                if self.recorded + len(chunk) > self._max:
                    # Bounded: give up the fallback's chance rather than grow.
                    self.overflowed = True
                    self.commit()
                else:
                    self._record.append(chunk)
                    self.recorded += len(chunk)
            yield chunk

    async def close(self) -> None:
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
            with contextlib.suppress(BaseException):
                await self._pending
        self._pending = None


class FallbackSTT:
    def __init__(self, providers: Sequence[STT], *, replay_max_s: float = REPLAY_MAX_S) -> None:
        self.providers = list(providers)
        self.name = _names(self.providers)
        self.replay_max_s = replay_max_s
        self.replay: _Replay | None = None  # the running call's (tests read its size)

    async def stream(
        self, audio: AsyncIterable[bytes], options: SttOptions
    ) -> AsyncIterator[Transcript]:
        max_bytes = int(self.replay_max_s * options.sample_rate) * PCM_SAMPLE_WIDTH
        replay = self.replay = _Replay(audio, max_bytes)
        run = _run(
            "stt",
            self.providers,
            lambda p: p.stream(replay.view(), options),
            None,
            replay.commit,
            replay.may_fall_back,
        )
        try:
            async for transcript in run:
                yield transcript
        finally:
            await run.aclose()
            await replay.close()
