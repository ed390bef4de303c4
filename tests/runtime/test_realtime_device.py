"""Speech-to-speech Dots end to end: the real runtime (uvicorn, real sockets, real Opus)
bridged to the loopback fake Realtime provider; only the provider is faked."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.pipeline.doubles import double_pipeline, loud_frame, silence_frame
from runtime.pipeline.interfaces import Pipeline
from runtime.protocol.device import ListenMode, ListenState
from runtime.protocol.realtime import AudioAppend, AudioCommit, ItemCreate, SessionUpdate
from runtime.realtime.fake import FakeRealtime, running_fake
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import DeviceClient, FakePlatform, decodable, running_runtime
from tests.runtime.realtime_kit import OPERATOR_KEY, assert_schema, s2s_agent, services_for

T = TEST_TIME_UNIT
UTTERANCE = loud_frame(600) + silence_frame(900)


def no_pipeline(_agent: Any) -> Pipeline:
    return double_pipeline("<chunk>pipeline answer</chunk>", "pipeline heard this")


@pytest.mark.parametrize("version", [1, 2, 3])
async def test_a_spoken_turn_through_the_provider(version: int) -> None:
    platform = FakePlatform()
    device = platform.add_device(s2s_agent())
    async with (
        running_fake(FakeRealtime(transcript="what time is it")) as fake,
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
        running_fake(FakeRealtime(transcript="manual words")) as fake,
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
    fake_provider = FakeRealtime(transcript=lambda _pcm: next(answers))
    async with (
        running_fake(fake_provider) as fake,
        running_runtime(no_pipeline, platform, realtime=services_for(fake.base_url)) as rt,
    ):
        for _ in range(2):
            client = DeviceClient(rt.ws_base, device.token)
            await client.connect()
            await client.hello()
            await client.listen(ListenState.START, ListenMode.AUTO)
            await client.send_audio(UTTERANCE)
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
