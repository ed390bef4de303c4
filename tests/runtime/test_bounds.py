"""Audio that never ends cannot grow the runtime (issue 11, item 10).

A device that streams without end, in a room where the STT provider hears
nothing, used to make the runtime keep every chunk: the STT fallback's replay
record until a first transcript that never came, and the utterance itself until
an end that never came. These tests stream many times the bounds (as fast as
the socket takes it, not in real time) and check what each buffer held.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

from websockets.asyncio.client import connect

from runtime.pipeline.doubles import FunctionLLM, FunctionTTS, ScriptedSTT, loud_frame
from runtime.pipeline.errors import ProviderUnavailable
from runtime.pipeline.fallback import FallbackSTT
from runtime.pipeline.interfaces import Pipeline, SttOptions, Transcript
from runtime.protocol.device import ListenMode, ListenState
from runtime.session.turn import Utterance
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import DeviceClient, FakePlatform, running_runtime

T = TEST_TIME_UNIT
RATE_BYTES = 16_000 * 2  # 16 kHz PCM16: bytes per second


class QuietSTT:
    """A provider in a quiet room: it takes all audio and never says a word.

    While it reads, it notes how much the fallback composite above it is holding
    for a replay, so a test sees that record at its largest."""

    def __init__(self, fail_after_bytes: int | None = None) -> None:
        self.name = "quiet"
        self.fallback: FallbackSTT | None = None
        self.heard: list[int] = []
        self.max_replay = 0
        self.fail_after_bytes = fail_after_bytes

    async def stream(
        self, audio: AsyncIterable[bytes], options: SttOptions
    ) -> AsyncIterator[Transcript]:
        total = 0
        self.heard.append(0)
        async for chunk in audio:
            total += len(chunk)
            self.heard[-1] = total
            if self.fallback is not None and self.fallback.replay is not None:
                self.max_replay = max(self.max_replay, self.fallback.replay.recorded)
            if self.fail_after_bytes is not None and total >= self.fail_after_bytes:
                raise ProviderUnavailable(self.name, "the live socket dropped")
        return
        yield  # an async generator that yields nothing


async def _pcm(seconds: float, chunk: int = 1920) -> AsyncIterator[bytes]:
    frame = loud_frame(60)
    for _ in range(int(seconds * RATE_BYTES) // chunk):
        yield frame[:chunk]
        await asyncio.sleep(0)


async def test_the_fallback_replay_stays_bounded_and_then_gives_up_its_chance() -> None:
    quiet = QuietSTT(fail_after_bytes=600 * RATE_BYTES)  # fails after ten minutes
    second = ScriptedSTT("never asked")
    fallback = FallbackSTT([quiet, second], replay_max_s=2.0)
    quiet.fallback = fallback
    stream = fallback.stream(_pcm(601), SttOptions())
    try:
        async for _ in stream:
            raise AssertionError("a quiet provider yields nothing")
    except ProviderUnavailable as exc:
        assert "dropped" in str(exc)  # the first provider's failure is the stage's
    else:
        raise AssertionError("the failure after the replay bound must not be papered over")
    assert quiet.heard == [600 * RATE_BYTES]  # ten minutes went through
    assert 0 < quiet.max_replay <= 2 * RATE_BYTES  # ... but at most 2 s were ever kept
    assert second.heard_bytes == []  # no fallback without the utterance's start


async def test_within_the_bound_the_next_provider_still_gets_the_whole_start() -> None:
    quiet = QuietSTT(fail_after_bytes=RATE_BYTES)  # fails after one second
    second = ScriptedSTT("hello")
    fallback = FallbackSTT([quiet, second], replay_max_s=2.0)
    texts = [t.text async for t in fallback.stream(_pcm(1.5), SttOptions())]
    assert texts == ["hello"]
    assert second.heard_bytes == [int(1.5 * RATE_BYTES) // 1920 * 1920]


async def test_an_utterance_takes_at_most_its_bound_and_says_so() -> None:
    never = asyncio.Event()

    class StuckSTT:
        name = "stuck"

        async def stream(
            self, audio: AsyncIterable[bytes], options: SttOptions
        ) -> AsyncIterator[Transcript]:
            await never.wait()  # connecting forever: reads nothing
            yield Transcript("", is_final=True)

    utterance = Utterance(StuckSTT(), SttOptions(), max_bytes=RATE_BYTES)
    frame = loud_frame(60)
    taken = [utterance.feed(frame) for _ in range(100)]  # six seconds offered
    assert taken[:16] == [True] * 16 and not any(taken[17:])
    assert utterance.full and utterance.audio_bytes == RATE_BYTES
    assert utterance.queued == 17  # the queue holds the bound and no more
    await utterance.cancel()


def _endless_pipeline(quiet: QuietSTT, *, scripted: str | None = None) -> Callable[[Any], Pipeline]:
    def make(_agent: Any) -> Pipeline:
        providers: list[Any] = [quiet] if scripted is None else [ScriptedSTT(scripted)]
        fallback = FallbackSTT([*providers, ScriptedSTT("fallback")], replay_max_s=0.5)
        quiet.fallback = fallback
        return Pipeline(
            vad=None,  # provider endpointing: nothing local ends the utterance
            stt=fallback,
            llm=FunctionLLM(lambda _r: "<chunk>Still here.</chunk>"),
            tts=FunctionTTS(),
        )

    return make


async def _stream_until(
    predicate: Callable[[], bool], send: Callable[[bytes], Awaitable[None]], within: float
) -> None:
    """Send half a second of loud audio at a time until `predicate` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await send(loud_frame(500))
        await asyncio.sleep(0.01)


async def test_a_device_streaming_without_end_gets_turns_at_the_bound() -> None:
    platform = FakePlatform()
    device = platform.add_device()
    quiet = QuietSTT()
    settings = {"RUNTIME_MAX_UTTERANCE_S": 1.0, "CLOSE_DEVICE_AFTER_TURN": False}
    async with running_runtime(_endless_pipeline(quiet), platform, **settings) as rt:
        client = DeviceClient(rt.ws_base, device.token)
        await client.connect()
        await client.hello()
        await client.listen(ListenState.START, ListenMode.AUTO)
        # Speech-level audio that never ends, as fast as the socket takes it (the runtime
        # drops what arrives while a turn runs, so the test streams until turns pile up).
        await _stream_until(lambda: len(platform.turns) >= 3, client.send_audio, 10 * T)
        cut = rt.app.ctx.metrics.utterances_cut.get(kind="device")
        await client.close()
    assert cut >= 3
    outcomes = [t["outcome"] for t in platform.turns.values()]
    # Heard nothing, so ignored; one turn may still run when the socket closes (aborted).
    assert outcomes.count("ignored") >= 3 and set(outcomes) <= {"ignored", "aborted"}
    # Each utterance ended at 1 s of audio, and the replay record at 0.5 s.
    assert len(quiet.heard) >= 3 and max(quiet.heard) <= RATE_BYTES
    assert 0 < quiet.max_replay <= RATE_BYTES // 2


async def test_manual_listening_ends_at_the_bound_as_a_turn_without_listen_stop() -> None:
    platform = FakePlatform()
    device = platform.add_device()
    settings = {"RUNTIME_MAX_UTTERANCE_S": 1.0}
    make = _endless_pipeline(QuietSTT(), scripted="tell me a story")
    async with running_runtime(make, platform, **settings) as rt:
        client = DeviceClient(rt.ws_base, device.token)
        await client.connect()
        await client.hello()
        await client.listen(ListenState.START, ListenMode.MANUAL)
        await client.send_audio(loud_frame(5_000))  # the button is never released
        stt = await client.next_json(lambda m: m["type"] == "stt")
        assert stt["text"] == "tell me a story"
        await client.until_closed()
    (turn,) = platform.turns.values()
    assert turn["outcome"] == "completed" and turn["transcript"] == "tell me a story"


async def test_a_browser_streaming_without_end_gets_turns_at_the_bound() -> None:
    platform = FakePlatform()
    token = platform.add_voice_token()
    quiet = QuietSTT()
    settings = {"RUNTIME_MAX_UTTERANCE_S": 1.0}
    async with (
        running_runtime(_endless_pipeline(quiet), platform, **settings) as rt,
        connect(f"{rt.ws_base}/voice?voice_token={token}", compression=None) as ws,
    ):
        await _stream_until(lambda: len(quiet.heard) >= 4, ws.send, 10 * T)
    assert max(quiet.heard) <= RATE_BYTES
    assert 0 < quiet.max_replay <= RATE_BYTES // 2
