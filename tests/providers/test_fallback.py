"""Fallback composites: the next provider takes over before any output, never after;
all failing raises the last error so the runtime can speak its apology."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

import pytest

from runtime.pipeline.errors import ProviderAuthError, ProviderTimeout, ProviderUnavailable
from runtime.pipeline.fallback import FallbackLLM, FallbackSTT, FallbackTTS
from runtime.pipeline.interfaces import (
    LlmRequest,
    Message,
    PcmChunk,
    SttOptions,
    Transcript,
    TtsOptions,
)

REQUEST = LlmRequest(instructions="", messages=[Message("user", "hi")])


class FakeLLM:
    def __init__(self, name: str, script: list[str | Exception], *, stall: bool = False) -> None:
        self.name = name
        self.script = script
        self.stall = stall
        self.calls = 0
        self.closed = False

    async def stream(self, request: LlmRequest) -> AsyncIterator[str]:
        self.calls += 1
        try:
            if self.stall:
                await asyncio.Event().wait()
            for item in self.script:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed = True


async def collect_llm(llm: FallbackLLM) -> list[str]:
    return [d async for d in llm.stream(REQUEST)]


async def test_first_fails_second_answers() -> None:
    first = FakeLLM("a", [ProviderUnavailable("a", "HTTP 503")])
    second = FakeLLM("b", ["Hello", "!"])
    assert await collect_llm(FallbackLLM([first, second])) == ["Hello", "!"]
    assert first.calls == second.calls == 1


async def test_first_byte_timeout_hands_over_and_closes_the_slow_one(unit: float) -> None:
    slow = FakeLLM("slow", ["late"], stall=True)
    fast = FakeLLM("fast", ["quick"])
    llm = FallbackLLM([slow, fast], first_output_timeout_s=0.05 * unit)
    assert await collect_llm(llm) == ["quick"]
    assert slow.closed


async def test_last_provider_gets_no_first_output_timeout(unit: float) -> None:
    gate = asyncio.Event()

    class Late:
        name = "late"

        async def stream(self, request: LlmRequest) -> AsyncIterator[str]:
            await gate.wait()
            yield "finally"

    llm = FallbackLLM([Late()], first_output_timeout_s=0.01 * unit)
    task = asyncio.create_task(collect_llm(llm))
    await asyncio.sleep(0.05 * unit)
    assert not task.done()
    gate.set()
    assert await asyncio.wait_for(task, 5 * unit) == ["finally"]


async def test_no_switch_after_output() -> None:
    first = FakeLLM("a", ["Par", ProviderUnavailable("a", "stream broke")])
    second = FakeLLM("b", ["never"])
    got: list[str] = []
    with pytest.raises(ProviderUnavailable, match="stream broke"):
        async for delta in FallbackLLM([first, second]).stream(REQUEST):
            got.append(delta)
    assert got == ["Par"] and second.calls == 0


async def test_all_fail_raises_the_last_error() -> None:
    first = FakeLLM("a", [ProviderUnavailable("a", "down")])
    second = FakeLLM("b", [ProviderAuthError("b", "HTTP 401")])
    with pytest.raises(ProviderAuthError, match="b: HTTP 401"):
        await collect_llm(FallbackLLM([first, second]))


async def test_unexpected_exception_counts_as_failure() -> None:
    broken = FakeLLM("broken", [KeyError("choices")])
    ok = FakeLLM("ok", ["fine"])
    assert await collect_llm(FallbackLLM([broken, ok])) == ["fine"]


async def test_closing_the_composite_closes_the_provider() -> None:
    first = FakeLLM("a", ["one", "two", "three"])
    gen = FallbackLLM([first]).stream(REQUEST)
    assert await anext(gen) == "one"
    await gen.aclose()  # type: ignore[attr-defined]
    assert first.closed


async def test_tts_falls_back_on_timeout(unit: float) -> None:
    class Silent:
        name = "silent"

        async def stream(self, text: str, options: TtsOptions) -> AsyncIterator[PcmChunk]:
            await asyncio.Event().wait()
            yield PcmChunk(b"", 24_000)

    class Local:
        name = "local"

        async def stream(self, text: str, options: TtsOptions) -> AsyncIterator[PcmChunk]:
            yield PcmChunk(text.encode(), 22_050)

    tts = FallbackTTS([Silent(), Local()], first_output_timeout_s=0.05 * unit)
    chunks = [c async for c in tts.stream("sorry", TtsOptions())]
    assert chunks == [PcmChunk(b"sorry", 22_050)]


async def test_tts_all_fail_raises_timeout_of_the_last(unit: float) -> None:
    class Broken:
        name = "broken"

        async def stream(self, text: str, options: TtsOptions) -> AsyncIterator[PcmChunk]:
            raise ProviderTimeout("broken", "no first byte")
            yield PcmChunk(b"", 1)  # pragma: no cover

    with pytest.raises(ProviderTimeout):
        [c async for c in FallbackTTS([Broken(), Broken()]).stream("x", TtsOptions())]


class RecordingSTT:
    """Consumes audio; fails after `fail_after` chunks or transcribes everything it got."""

    def __init__(self, name: str, fail_after: int | None = None) -> None:
        self.name = name
        self.fail_after = fail_after
        self.heard: list[bytes] = []

    async def stream(
        self, audio: AsyncIterable[bytes], options: SttOptions
    ) -> AsyncIterator[Transcript]:
        async for chunk in audio:
            self.heard.append(chunk)
            if self.fail_after is not None and len(self.heard) >= self.fail_after:
                raise ProviderUnavailable(self.name, "socket closed")
        yield Transcript(b"".join(self.heard).decode(), is_final=True)


async def test_stt_fallback_replays_the_audio_already_consumed() -> None:
    async def mic() -> AsyncIterator[bytes]:
        for word in (b"what ", b"time ", b"is ", b"it"):
            yield word

    first = RecordingSTT("deepgram", fail_after=2)
    second = RecordingSTT("local")
    got = [t async for t in FallbackSTT([first, second]).stream(mic(), SttOptions())]
    assert got == [Transcript("what time is it", is_final=True)]
    assert first.heard == [b"what ", b"time "]


async def test_stt_cancelled_reader_does_not_kill_the_audio_source(unit: float) -> None:
    """A provider whose reader task is cancelled mid-read must not close the mic."""
    feed: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def mic() -> AsyncIterator[bytes]:
        while (chunk := await feed.get()) is not None:
            yield chunk

    class CancelsItsReader:
        name = "cancelling"

        async def stream(
            self, audio: AsyncIterable[bytes], options: SttOptions
        ) -> AsyncIterator[Transcript]:
            iterator = aiter(audio)
            reader = asyncio.ensure_future(anext(iterator))
            await asyncio.sleep(0)  # the read is now pending on an empty mic
            reader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reader
            raise ProviderUnavailable(self.name, "socket closed")
            yield Transcript("", False)  # pragma: no cover

    async def speak() -> None:
        await asyncio.sleep(0.01 * unit)
        for chunk in (b"hello ", b"there"):
            await feed.put(chunk)
        await feed.put(None)

    second = RecordingSTT("local")
    speaker = asyncio.create_task(speak())
    got = [t async for t in FallbackSTT([CancelsItsReader(), second]).stream(mic(), SttOptions())]
    await speaker
    assert got == [Transcript("hello there", is_final=True)]
