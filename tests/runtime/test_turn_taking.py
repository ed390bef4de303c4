"""Turn taking through the real runtime and real sockets: semantic end of turn (Silero +
Smart Turn v3.2, real models), barge-in on Dots and browsers, live partial transcripts.
STT, LLM and TTS are doubles; the decisions under test are the runtime's own."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect

from runtime.audio.resample import resample
from runtime.audio.synthetic import silence
from runtime.composition import shared_vad
from runtime.pipeline.doubles import FunctionLLM, FunctionTTS, chunked
from runtime.pipeline.interfaces import Pipeline, SttOptions, Transcript
from runtime.protocol.device import ListenMode, ListenState
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import DeviceClient, FakePlatform, running_runtime

T = TEST_TIME_UNIT
REALTIME_AGENT = {"id": str(uuid.uuid4()), "name": "Turns", "pipeline": []}


@pytest.fixture(scope="module")
def piper() -> Callable[[str], bytes]:
    from piper.config import SynthesisConfig

    from runtime.providers.local_tts import piper_voice

    voice = piper_voice()
    cache: dict[str, bytes] = {}
    still = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)  # the same audio every run

    def speak(text: str) -> bytes:
        if text not in cache:
            pcm = b"".join(c.audio_int16_bytes for c in voice.synthesize(text, still))
            cache[text] = resample(pcm, 22_050, 16_000)
        return cache[text]

    return speak


class PartialSTT:
    """Says what it is told, one word at a time as interims (as the local and OpenAI
    providers do while an utterance grows), then the whole text as the final."""

    name = "partial-stt"

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.calls = 0

    async def stream(
        self, audio: AsyncIterable[bytes], options: SttOptions
    ) -> AsyncIterator[Transcript]:
        text = self.texts[min(self.calls, len(self.texts) - 1)]
        self.calls += 1
        words = text.split()
        heard = 0
        async for chunk in audio:
            heard += len(chunk)
            spoken = min(len(words), heard // 16_000)  # a word per 0.5 s of audio
            if spoken and heard - len(chunk) < spoken * 16_000 <= heard:
                yield Transcript(" ".join(words[:spoken]), is_final=False)
        yield Transcript(text, is_final=True)


def pipeline(stt: Any, reply_ms_per_char: float = 8.0) -> Pipeline:
    vad = shared_vad()  # Silero + Smart Turn, the runtime's own
    return Pipeline(
        vad=vad,
        stt=stt,
        llm=FunctionLLM(lambda r: chunked("Here is a rather long answer to that.")),
        tts=FunctionTTS(ms_per_char=reply_ms_per_char),
    )


def turn_ends(platform: FakePlatform) -> list[dict[str, Any]]:
    return [e["payload"] for e in platform.events if e["kind"] == "end_of_turn"]


async def read_until(
    client: DeviceClient, predicate: Callable[[str, Any], bool], within: float
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        kind, value = await client.recv(max(0.001, deadline - asyncio.get_running_loop().time()))
        if predicate(kind, value):
            return


def is_tts(state: str) -> Callable[[str, Any], bool]:
    return lambda kind, value: (
        kind == "json" and value.get("type") == "tts" and (value.get("state") == state)
    )


# --- semantic end of turn -------------------------------------------------------------------


async def test_a_finished_sentence_ends_at_once_a_mid_sentence_pause_does_not(
    piper: Callable[[str], bytes],
) -> None:
    platform = FakePlatform()
    device = platform.add_device(REALTIME_AGENT)
    stt = PartialSTT(["please set a timer", "i was thinking maybe we could go to the park"])
    async with running_runtime(
        lambda _a: pipeline(stt), platform, CLOSE_DEVICE_AFTER_TURN=False
    ) as rt:
        client = DeviceClient(rt.ws_base, device.token)
        await client.connect()
        await client.hello()
        await client.listen(ListenState.START, ListenMode.AUTO)
        # A finished request, then the silence a Dot keeps streaming.
        await client.send_audio(silence(300) + piper("Please set a timer for ten minutes."))
        sender = asyncio.create_task(client.send_audio(silence(3000), pace_s=0.06))
        await read_until(client, is_tts("stop"), 30 * T)
        await sender
        # "..., um" and a 1.2 s pause: still the person's turn; then the rest of it.
        unfinished = piper("I was thinking that maybe we could, um")
        rest = piper("go to the park later.")
        await client.send_audio(silence(300) + unfinished + silence(1200) + rest)
        sender = asyncio.create_task(client.send_audio(silence(3000), pace_s=0.06))
        await read_until(client, is_tts("stop"), 30 * T)
        await sender
        await client.close()
    ends = turn_ends(platform)
    assert ends[0]["reason"] == "complete"  # judged finished: no long wait
    assert ends[0]["probability"] >= 0.9
    # One turn for the paused sentence, heard whole: the pause did not end it.
    assert len(platform.turns) == 2 and stt.calls == 2
    second = max(platform.turns.values(), key=lambda t: t["turnIndex"])
    assert second["transcript"] == "i was thinking maybe we could go to the park"


# --- barge-in on a Dot ----------------------------------------------------------------------


async def talk_over_the_reply(
    piper: Callable[[str], bytes],
    *,
    aec: bool,
    person: str,
    texts: list[str],
    until: Callable[[str, Any], bool] | None = None,
) -> tuple[DeviceClient, FakePlatform, PartialSTT]:
    platform = FakePlatform()
    device = platform.add_device(REALTIME_AGENT)
    stt = PartialSTT(texts)
    # A reply of about 8 s, paced as a Dot plays it.
    make = lambda _a: pipeline(stt, reply_ms_per_char=220)  # noqa: E731
    async with running_runtime(make, platform, CLOSE_DEVICE_AFTER_TURN=False) as rt:
        client = DeviceClient(rt.ws_base, device.token, version=2)
        await client.connect()
        await client.hello({"aec": True} if aec else {})
        await client.listen(ListenState.START, ListenMode.REALTIME)
        await client.send_audio(silence(300) + piper("What is the weather like today?"))
        # A realtime Dot streams all the time: silence, then the person over the reply.
        background = asyncio.create_task(client.send_audio(silence(900), pace_s=0.06))
        await read_until(client, lambda kind, _v: kind == "audio", 30 * T)
        await background
        await client.send_audio(silence(600), pace_s=0.06)
        await client.send_audio(piper(person), pace_s=0.06)
        background = asyncio.create_task(client.send_audio(silence(4000), pace_s=0.06))
        await read_until(client, until or is_tts("stop"), 30 * T)
        await background
        await asyncio.sleep(0.3 * T)
        await client.close()
    return client, platform, stt


def barge_ins(platform: FakePlatform) -> list[dict[str, Any]]:
    return [e["payload"] for e in platform.events if e["kind"] == "barge_in"]


async def test_interrupting_an_aec_dot_stops_the_reply_and_answers(
    piper: Callable[[str], bytes],
) -> None:
    client, platform, _ = await talk_over_the_reply(
        piper,
        aec=True,
        person="Wait, stop, I meant tomorrow in Boston.",
        texts=["what is the weather like today", "wait stop i meant tomorrow in boston"],
        until=lambda kind, value: (
            kind == "json"
            and value.get("type") == "stt"
            and value["text"] == "wait stop i meant tomorrow in boston"
        ),
    )
    decisions = barge_ins(platform)  # "Wait," alone may be dismissed as short first
    confirmed = [d for d in decisions if d["verdict"] == "confirm"]
    assert confirmed and confirmed[0]["reason"] in ("words", "long_speech"), decisions
    outcomes = sorted(t["outcome"] for t in platform.turns.values())
    assert "interrupted" in outcomes  # the reply was cut
    first = min(platform.turns.values(), key=lambda t: t["turnIndex"])
    assert first["outcome"] == "interrupted"
    # The tts stop came before the reply's audio was all sent (a flush, not the end).
    stops = [i for i, (k, v) in enumerate(client.log) if k == "json" and v.get("state") == "stop"]
    assert stops
    # The new utterance was answered: its transcript reached the Dot as `stt`.
    stt_texts = [m["text"] for m in client.messages if m["type"] == "stt"]
    assert "wait stop i meant tomorrow in boston" in stt_texts


async def test_a_backchannel_does_not_interrupt(piper: Callable[[str], bytes]) -> None:
    _client, platform, _ = await talk_over_the_reply(
        piper, aec=True, person="Mm-hmm.", texts=["what is the weather like today", "mm hmm"]
    )
    decisions = barge_ins(platform)
    assert decisions and all(d["verdict"] == "dismiss" for d in decisions)
    (turn,) = platform.turns.values()
    assert turn["outcome"] == "completed"  # the whole reply played


async def test_a_dot_without_aec_is_never_interrupted_by_audio(
    piper: Callable[[str], bytes],
) -> None:
    _client, platform, stt = await talk_over_the_reply(
        piper,
        aec=False,
        person="Wait, stop, I meant tomorrow in Boston.",
        texts=["what is the weather like today", "wait stop"],
    )
    assert barge_ins(platform) == []
    outcomes = [t["outcome"] for t in platform.turns.values()]
    assert outcomes[0] == "completed"
    assert stt.calls >= 1


# --- partials -------------------------------------------------------------------------------


async def test_partials_reach_the_dot_as_stt_and_the_browser_as_stt_interim(
    piper: Callable[[str], bytes],
) -> None:
    platform = FakePlatform()
    device = platform.add_device(REALTIME_AGENT)
    token = platform.add_voice_token(REALTIME_AGENT)
    texts = ["please set a timer for ten minutes"]
    speech = silence(300) + piper("Please set a timer for ten minutes.") + silence(2400)
    async with running_runtime(
        lambda _a: pipeline(PartialSTT(texts)), platform, CLOSE_DEVICE_AFTER_TURN=False
    ) as rt:
        client = DeviceClient(rt.ws_base, device.token)
        await client.speak(speech)
        await read_until(client, is_tts("start"), 30 * T)
        await client.close()
        events: list[dict[str, Any]] = []
        async with connect(f"{rt.ws_base}/voice?voice_token={token}") as ws:
            pcm = np.frombuffer(speech, dtype="<i2").tobytes()
            for start in range(0, len(pcm), 3200):
                await ws.send(pcm[start : start + 3200])
            while not events or events[-1]["type"] != "user_final":
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 30 * T)))
    stt = [m["text"] for m in client.messages if m["type"] == "stt"]
    assert stt[:2] == ["please", "please set"]  # live, word by word
    assert stt[-1] == texts[0]
    interims = [e["text"] for e in events if e["type"] == "stt_interim"]
    assert interims[:2] == ["please", "please set"]


# --- barge-in on /voice ---------------------------------------------------------------------


async def test_a_browser_is_interrupted_while_it_plays_the_reply(
    piper: Callable[[str], bytes],
) -> None:
    platform = FakePlatform()
    agent = {
        "id": str(uuid.uuid4()),
        "name": "Voice",
        "pipeline": [
            {"id": "tts", "settings": {"delivery": "chunked_file", "encoding": "linear16"}}
        ],
    }
    token = platform.add_voice_token(agent)
    texts = ["what is the weather like today", "no tell me about tomorrow in boston"]
    stt = PartialSTT(texts)
    events: list[dict[str, Any]] = []

    async def until(ws: Any, predicate: Callable[[dict[str, Any]], bool]) -> None:
        while True:
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 30 * T)))
            if predicate(events[-1]):
                return

    async def say(ws: Any, pcm: bytes) -> None:
        for start in range(0, len(pcm), 1920):
            await ws.send(pcm[start : start + 1920])

    async with (
        running_runtime(lambda _a: pipeline(stt, reply_ms_per_char=220), platform) as rt,
        connect(f"{rt.ws_base}/voice?voice_token={token}") as ws,
    ):
        await until(ws, lambda e: e["type"] == "runtime_ready")
        await say(ws, silence(300) + piper("What is the weather like today?") + silence(2400))
        await until(ws, lambda e: e["type"] == "assistant_end")  # sent; the browser plays on
        await say(ws, silence(300) + piper("No, tell me about tomorrow in Boston.") + silence(2400))
        await until(ws, lambda e: e["type"] == "user_final")
    kinds = [(e["type"], e.get("event")) for e in events]
    assert ("vad_event", "BargeIn") in kinds  # the client stops what it was playing
    assert kinds.index(("vad_event", "BargeIn")) < len(kinds) - 1  # before the new user_final
    assert events[-1]["text"] == texts[1]
    decisions = [e["payload"] for e in platform.events if e["kind"] == "barge_in"]
    assert decisions[-1]["verdict"] == "confirm"
