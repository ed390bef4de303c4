"""Live partials for whole-file recognisers: bounded rate, one in flight, skipped under load."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import respx

from runtime.pipeline.interfaces import SttOptions, Transcript
from runtime.providers.openai_speech import OpenAISTT
from runtime.providers.partials import PartialBudget, PartialPolicy, interim
from tests.providers.test_openai_speech import BASE, endpoint

CHUNK = b"\x01\x00" * 1600  # 100 ms of 16 kHz PCM16


async def speak(chunks: int, gate: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    for _ in range(chunks):
        yield CHUNK
        await asyncio.sleep(0)
        if gate is not None:
            await gate.wait()


async def test_one_decode_in_flight_at_a_bounded_rate() -> None:
    started: list[int] = []
    release = asyncio.Event()

    async def decode(pcm: bytes) -> str:
        started.append(len(pcm) // 32)  # ms of audio this decode saw
        await release.wait()
        return f"heard {len(pcm) // 32} ms"

    buffer = bytearray()
    out: list[Transcript] = []

    async def consume() -> None:
        policy = PartialPolicy(interval_ms=500, min_ms=300)
        async for t in interim(
            speak(20), buffer, decode=decode, policy=policy, budget=PartialBudget(4)
        ):
            out.append(t)

    task = asyncio.create_task(consume())
    while len(buffer) < 20 * len(CHUNK):  # noqa: ASYNC110 - the pump fills it, no event to await
        await asyncio.sleep(0)
    # 2 s heard, but the first decode (at 500 ms) never finished: no second one started.
    assert started == [500]
    release.set()
    await task
    assert len(buffer) == 20 * len(CHUNK)
    # The utterance ended before that partial came back: it is discarded (the final
    # transcript, decoded by the provider, says it all).
    assert out == []


async def test_partials_follow_the_audio_when_decodes_are_quick() -> None:
    async def decode(pcm: bytes) -> str:
        return f"{len(pcm) // 32}"

    buffer = bytearray()
    gate = asyncio.Event()
    gate.set()
    policy = PartialPolicy(interval_ms=500, min_ms=300)
    texts = [
        t.text
        async for t in interim(
            speak(21, gate), buffer, decode=decode, policy=policy, budget=PartialBudget(4)
        )
    ]
    assert texts == ["500", "1000", "1500", "2000"]


async def test_a_spent_budget_skips_instead_of_queueing() -> None:
    budget = PartialBudget(0)
    calls = 0

    async def decode(pcm: bytes) -> str:
        nonlocal calls
        calls += 1
        return "never"

    policy = PartialPolicy(interval_ms=100, min_ms=100)
    got = [
        t
        async for t in interim(speak(10), bytearray(), decode=decode, policy=policy, budget=budget)
    ]
    assert got == [] and calls == 0 and budget.skipped >= 9


@respx.mock
async def test_openai_transcription_sends_partials_then_the_final() -> None:
    sizes: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sizes.append(len(request.content))
        return httpx.Response(200, json={"text": f"part {len(sizes)}"})

    route = respx.post(f"{BASE}/audio/transcriptions").mock(side_effect=answer)
    gate = asyncio.Event()
    gate.set()
    stt = OpenAISTT(endpoint())
    got = [t async for t in stt.stream(speak(25, gate), SttOptions())]
    finals = [t for t in got if t.is_final]
    interims = [t for t in got if not t.is_final]
    assert len(finals) == 1 and finals[0].text == f"part {route.call_count}"
    assert 1 <= len(interims) <= 2  # one per second of new audio, from 1 s on
    assert sizes == sorted(sizes)  # each partial saw more of the utterance
