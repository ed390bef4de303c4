"""Speech-to-speech Dots end to end: the real runtime (uvicorn, real sockets, real Opus)
bridged to the loopback fake Realtime provider; only the provider is faked."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest

from runtime.pipeline.doubles import double_pipeline, loud_frame, silence_frame
from runtime.pipeline.interfaces import Pipeline
from runtime.protocol.device import ListenMode, ListenState
from runtime.protocol.realtime import AudioAppend, AudioCommit, ItemCreate, SessionUpdate
from runtime.realtime.fake import FakeRealtime, running_fake
from runtime.realtime.services import APOLOGIES
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import DeviceClient, FakePlatform, decodable, running_runtime
from tests.runtime.realtime_kit import (
    OPERATOR_KEY,
    Apologies,
    assert_schema,
    s2s_agent,
    services_for,
)

T = TEST_TIME_UNIT
UTTERANCE = loud_frame(600) + silence_frame(900)


def no_pipeline(_agent: Any) -> Pipeline:
    return double_pipeline("<chunk>pipeline answer</chunk>", "pipeline heard this")


@pytest.mark.parametrize("version", [1, 2, 3])
async def test_a_spoken_turn_through_the_provider(version: int) -> None:
    platform = FakePlatform()
    device = platform.add_device(s2s_agent())
    async with (
        running_fake(FakeRealtime(transcript="what time is it", ms_per_char=15)) as fake,
        running_runtime(no_pipeline, platform, realtime=services_for(fake.base_url)) as rt,
    ):
        client = DeviceClient(rt.ws_base, device.token, version=version)
        await client.connect()
        hello = await client.hello()
        assert hello["audio_params"]["sample_rate"] == 24000
        await client.listen(ListenState.START, ListenMode.AUTO)
        await client.send_audio(UTTERANCE)
        assert await client.until_closed() == (1000, "turn_complete")
        await client.close()
        session = fake.fake.sessions[0]
    stt = [m["text"] for m in client.messages if m["type"] == "stt"]
    assert stt == ["what time is it"]
    states = [m["state"] for m in client.messages if m["type"] == "tts"]
    assert states[0] == "start" and states[-1] == "stop" and "sentence_start" in states
    sentences = [m["text"] for m in client.messages if m.get("state") == "sentence_start"]
    assert " ".join(sentences) == "You said: what time is it."
    order = [k if k == "audio" else v.get("state") or v["type"] for k, v in client.log]
    assert order.index("start") < order.index("audio") < order.index("stop")
    assert order.index("stop") > max(i for i, k in enumerate(order) if k == "audio")
    assert client.packets and decodable(client.packets) == len(client.packets)
    # The provider got the operator key, the agent's instructions, and batched audio.
    assert session.headers["authorization"] == f"Bearer {OPERATOR_KEY}"
    assert "model=gpt-realtime-2" in session.query
    assert isinstance(session.events[0], SessionUpdate)
    assert "Agent name: Realtime Dot." in session.config.instructions
    appends = [e for e in session.events if isinstance(e, AudioAppend)]
    frames = len(UTTERANCE) // 1920
    assert 0 < len(appends) < frames  # several device frames per provider message
    assert_schema(session)
    # Records: a completed turn with its transcripts and the bridge's marks.
    (turn,) = platform.turns.values()
    assert turn["outcome"] == "completed"
    assert turn["transcript"] == "what time is it"
    assert turn["replyText"] == "You said: what time is it."
    marks = turn["marks"]
    assert marks["speechEndAt"] <= marks["firstChunkAt"] <= marks["firstAudioAt"]
    assert marks["sttFinalAt"] and marks["llmFirstTokenAt"]


async def test_manual_listening_commits_on_listen_stop() -> None:
    platform = FakePlatform()
    device = platform.add_device(s2s_agent())
    async with (
        running_fake(FakeRealtime(transcript="manual words", ms_per_char=15)) as fake,
        running_runtime(no_pipeline, platform, realtime=services_for(fake.base_url)) as rt,
    ):
        client = DeviceClient(rt.ws_base, device.token)
        await client.connect()
        await client.hello()
        await client.listen(ListenState.START, ListenMode.MANUAL)
        await client.send_audio(loud_frame(300) + silence_frame(1500))
        await client.listen(ListenState.STOP)
        assert await client.until_closed() == (1000, "turn_complete")
        await client.close()
        session = fake.fake.sessions[0]
    # Turn detection went off for manual listening, and the commit followed listen stop.
    updates = [e for e in session.events if isinstance(e, SessionUpdate)]
    assert updates[-1].session.turn_detection is None
    kinds = session.kinds()
    assert "input_audio_buffer.speech_started" not in kinds
    assert kinds.count("input_audio_buffer.commit") == 1
    assert kinds.index("input_audio_buffer.commit") < kinds.index("response.create")
    assert any(isinstance(e, AudioCommit) for e in session.events)
    (turn,) = platform.turns.values()
    assert turn["outcome"] == "completed" and turn["transcript"] == "manual words"


async def test_memory_survives_the_socket_and_is_replayed_as_items() -> None:
    platform = FakePlatform()
    device = platform.add_device(s2s_agent())
    answers = iter(["first question", "second question"])
    fake_provider = FakeRealtime(transcript=lambda _pcm: next(answers), ms_per_char=15)
    async with (
        running_fake(fake_provider) as fake,
        running_runtime(no_pipeline, platform, realtime=services_for(fake.base_url)) as rt,
    ):
        for _ in range(2):
            client = DeviceClient(rt.ws_base, device.token)
            await client.speak(UTTERANCE)
            assert await client.until_closed() == (1000, "turn_complete")
            await client.close()
        first, second = fake.fake.sessions
    assert not [e for e in first.events if isinstance(e, ItemCreate)]
    replayed = [e.item for e in second.events if isinstance(e, ItemCreate)]
    assert [(i.role, i.text) for i in replayed] == [  # type: ignore[union-attr]
        ("user", "first question"),
        ("assistant", "You said: first question."),
    ]
    # Replayed right after session.update, before any audio of the new turn.
    kinds = second.kinds()
    assert kinds[:3] == ["session.update", "conversation.item.create", "conversation.item.create"]
    turns = sorted(platform.turns.values(), key=lambda t: t["marks"]["endedAt"])
    assert turns[-1]["replyText"] == (
        "You said: second question. Before that you said: first question."
    )


async def _one_turn(rt: Any, token: str) -> DeviceClient:
    client = DeviceClient(rt.ws_base, token)
    await client.speak(UTTERANCE)
    await client.until_closed()
    await client.close()
    return client


def _sentences(client: DeviceClient) -> list[str]:
    return [m["text"] for m in client.messages if m.get("state") == "sentence_start"]


async def test_provider_drop_mid_turn_apologises_then_the_pipeline_answers() -> None:
    platform = FakePlatform()
    device = platform.add_device(s2s_agent(fallback="pipeline"))
    apologies = Apologies()
    provider = FakeRealtime(transcript="tell me a story", ms_per_char=20)
    provider.drop_after_deltas = 2
    async with (
        running_fake(provider) as fake,
        running_runtime(
            no_pipeline, platform, realtime=services_for(fake.base_url, apologies)
        ) as rt,
    ):
        first = await _one_turn(rt, device.token)
        second = await _one_turn(rt, device.token)
        assert len(fake.fake.sessions) == 1  # the second socket did not try the provider
    # The partial reply was cut with tts stop, then the offline apology was spoken.
    assert apologies.languages == ["en-US"]
    assert apologies.tts.texts == [APOLOGIES["en"][0]]
    assert _sentences(first)[-1] == APOLOGIES["en"][0]
    assert [m["state"] for m in first.messages if m["type"] == "tts"][-1] == "stop"
    # The next turn ran on the agent's pipeline stages.
    assert [m["text"] for m in second.messages if m["type"] == "stt"] == ["pipeline heard this"]
    assert _sentences(second) == ["pipeline answer"]
    failed, answered = sorted(platform.turns.values(), key=lambda t: t["marks"]["endedAt"])
    assert failed["outcome"] == "failed" and "closed the connection" in failed["error"]
    assert answered["outcome"] == "completed" and answered["replyText"] == "pipeline answer"
    events = [e for e in platform.events if e["kind"] == "provider_error"]
    assert events and events[0]["payload"]["stage"] == "realtime"


async def test_refused_key_is_an_apology_and_the_key_stays_out_of_records() -> None:
    platform = FakePlatform()
    device = platform.add_device(s2s_agent())
    apologies = Apologies()
    async with (
        running_fake(FakeRealtime(api_key="sk-the-real-key-is-another-one")) as fake,
        running_runtime(
            no_pipeline, platform, realtime=services_for(fake.base_url, apologies)
        ) as rt,
    ):
        client = await _one_turn(rt, device.token)
        assert not fake.fake.sessions
    assert _sentences(client) == [APOLOGIES["en"][0]]
    (turn,) = platform.turns.values()
    assert turn["outcome"] == "failed" and "401" in turn["error"]
    everything = json.dumps([platform.turns, platform.events])
    assert OPERATOR_KEY not in everything


async def test_rate_limit_is_recorded_with_the_providers_message() -> None:
    platform = FakePlatform()
    device = platform.add_device(s2s_agent())
    provider = FakeRealtime()
    provider.fail_response = ("rate_limit_exceeded", "Rate limit reached for requests.")
    async with (
        running_fake(provider) as fake,
        running_runtime(no_pipeline, platform, realtime=services_for(fake.base_url)) as rt,
    ):
        client = await _one_turn(rt, device.token)
    assert _sentences(client) == [APOLOGIES["en"][0]]
    (turn,) = platform.turns.values()
    assert turn["outcome"] == "failed"
    assert turn["error"] == "Rate limit reached for requests."
    recorded = [e["payload"] for e in platform.events if e["turnId"] == turn["id"]]
    codes = {p.get("code") for p in recorded}
    assert "rate_limit_exceeded" in codes
    assert any(p.get("message") == "Rate limit reached for requests." for p in recorded)


def _played_ms(arrivals: list[float], at: float, frame_s: float = 0.06) -> float:
    """What a device that plays each packet as soon as it can had played by `at`."""
    played, end = 0.0, 0.0
    for arrived in arrivals:
        start = max(arrived, end)
        end = start + frame_s
        played += min(max(0.0, at - start), frame_s)
    return played * 1000


async def test_barge_in_flushes_the_device_and_truncates_to_what_was_played() -> None:
    platform = FakePlatform()
    device = platform.add_device(s2s_agent())
    # Audio twice as fast as it plays, as a provider streams it: still generating at the cut.
    provider = FakeRealtime(transcript="tell me everything", ms_per_char=120, delta_interval_s=0.05)
    async with (
        running_fake(provider) as fake,
        running_runtime(no_pipeline, platform, realtime=services_for(fake.base_url)) as rt,
    ):
        client = DeviceClient(rt.ws_base, device.token)
        await client.connect()
        await client.hello({"aec": True})  # only a Dot that cancels its echo is heard over it
        await client.listen(ListenState.START, ListenMode.REALTIME)
        loop = asyncio.get_running_loop()
        timed: list[tuple[float, str, Any]] = []  # (arrival, kind, value), stamped on arrival
        enough, stopped = asyncio.Event(), asyncio.Event()

        async def read() -> None:
            while True:
                kind, value = await client.recv(10 * T)
                timed.append((loop.time(), kind, value))
                if sum(1 for _, k, _ in timed if k == "audio") >= 20:
                    enough.set()  # 5 at once, then one per 60 ms: about 0.9 s played
                if kind == "json" and value.get("type") == "tts" and value["state"] == "stop":
                    stopped.set()

        reader = asyncio.create_task(read())  # reading before the reply can start
        await client.send_audio(UTTERANCE)
        await asyncio.wait_for(enough.wait(), 10 * T)
        await client.send_audio(loud_frame(300))  # the person talks over the reply
        await asyncio.wait_for(stopped.wait(), 10 * T)
        await asyncio.sleep(0.3 * T)  # anything of the cut reply would arrive by now
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await reader
        await client.close()
        session = fake.fake.sessions[0]
    stop_at, stop_index = next(
        (at, i) for i, (at, k, v) in enumerate(timed) if k == "json" and v.get("state") == "stop"
    )
    arrivals = [at for at, kind, _ in timed[:stop_index] if kind == "audio"]
    heard = _played_ms(arrivals, stop_at)
    assert not [k for _, k, _ in timed[stop_index:] if k == "audio"]  # flushed at once
    (truncate,) = session.truncates
    assert abs(truncate.audio_end_ms - heard) <= 60, (truncate.audio_end_ms, heard)
    assert truncate.audio_end_ms < len("You said: tell me everything.") * 120
    assert session.cancelled == 1  # the provider cut its own response (interrupt_response)
    first = min(platform.turns.values(), key=lambda t: t["marks"]["endedAt"])
    assert first["outcome"] == "interrupted"
    cut = [e for e in platform.events if e["kind"] == "realtime_truncate"]
    assert cut and cut[0]["payload"]["playedMs"] == truncate.audio_end_ms


async def test_azure_resource_with_an_allow_listed_operator_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    azure_key = "azure-operator-key-0123456789"
    async with running_fake(FakeRealtime(api_key=azure_key, ms_per_char=15)) as fake:
        resource = f"http://127.0.0.1:{fake.port}"
        monkeypatch.setenv("AZURE_OPENAI_REALTIME_KEY", azure_key)
        services = services_for(
            fake.base_url,
            OPENDOT_PROVIDER_KEY_NAMES=f"OPENAI_API_KEY,AZURE_OPENAI_REALTIME_KEY={resource}",
        )
        platform = FakePlatform()
        agent = s2s_agent(
            provider="azure",
            baseUrl=f"{resource}/openai/v1",
            apiKeyName="AZURE_OPENAI_REALTIME_KEY",
            model="my-realtime-deployment",
        )
        device = platform.add_device(agent)
        async with running_runtime(no_pipeline, platform, realtime=services) as rt:
            client = await _one_turn(rt, device.token)
        (session,) = fake.fake.sessions
    assert session.headers["api-key"] == azure_key and "authorization" not in session.headers
    assert session.query == "model=my-realtime-deployment"
    assert _sentences(client) == ["You said: hello there."]


async def test_a_memory_reset_starts_a_fresh_provider_conversation() -> None:
    platform = FakePlatform()
    device = platform.add_device(s2s_agent())
    answers = iter(["my name is Ada", "what is my name"])
    provider = FakeRealtime(transcript=lambda _pcm: next(answers), ms_per_char=15)
    async with (
        running_fake(provider) as fake,
        running_runtime(
            no_pipeline,
            platform,
            realtime=services_for(fake.base_url),
            CLOSE_DEVICE_AFTER_TURN=False,
        ) as rt,
    ):
        client = DeviceClient(rt.ws_base, device.token)
        await client.connect()
        await client.hello()
        for turn in range(2):
            await client.listen(ListenState.START, ListenMode.AUTO)
            await client.send_audio(UTTERANCE)
            await client.next_json(lambda m: m["type"] == "tts" and m["state"] == "stop")
            if turn == 0:  # the owner resets the Dot's memory between the two turns
                assert rt.app.ctx.forget_device_memory(device.uuid)
        await client.close()
        first, second = fake.fake.sessions
    assert second.conversation[0].text == "what is my name"  # nothing replayed
    assert _sentences(client)[-1] == "You said: what is my name."
    assert len(first.conversation) == 2
