"""Device sessions end to end against the real runtime (uvicorn) with provider doubles."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from runtime.pipeline.doubles import double_pipeline, loud_frame, silence_frame
from runtime.pipeline.errors import ProviderTimeout, ProviderUnavailable
from runtime.pipeline.fallback import FallbackSTT, FallbackTTS
from runtime.pipeline.interfaces import Pipeline
from runtime.protocol.device import ListenMode, ListenState
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import DeviceClient, FakePlatform, decodable, final_stt, running_runtime

T = TEST_TIME_UNIT
UTTERANCE = loud_frame(600) + silence_frame(600)


def pipeline_for(
    reply: str = "<chunk>Hello there.</chunk><chunk>Second part.</chunk>",
) -> Callable[[Any], Pipeline]:
    def make(_agent: Any) -> Pipeline:
        return double_pipeline(reply, "what time is it")

    return make


@pytest.mark.parametrize("version", [1, 2, 3])
async def test_a_spoken_turn_returns_stt_llm_tts_and_decodable_opus(version: int) -> None:
    platform = FakePlatform()
    device = platform.add_device()
    async with running_runtime(pipeline_for(), platform) as rt:
        client = DeviceClient(rt.ws_base, device.token, version=version)
        await client.connect()
        hello = await client.hello()
        assert hello["transport"] == "websocket"
        assert hello["audio_params"]["sample_rate"] == 24000
        assert hello["audio_params"]["frame_duration"] == 60
        await client.listen(ListenState.START, ListenMode.AUTO)
        await client.send_audio(UTTERANCE)
        code, reason = await client.until_closed()
        assert (code, reason) == (1000, "turn_complete")
        kinds = [(m["type"], m.get("state")) for m in client.messages]
        assert ("stt", None) in kinds and ("llm", None) in kinds
        assert final_stt(client.messages) == "what time is it"
        assert all(m["session_id"] == client.session_id for m in client.messages)
        tts_states = [m["state"] for m in client.messages if m["type"] == "tts"]
        assert tts_states == ["start", "sentence_start", "sentence_start", "stop"]
        # Audio follows its sentence_start and precedes tts stop.
        order = [k if k == "audio" else v.get("state") or v["type"] for k, v in client.log]
        assert order.index("stop") > max(i for i, k in enumerate(order) if k == "audio")
        assert client.packets and decodable(client.packets) == len(client.packets)
        await client.close()
    # Records reached the API: session open/close and a completed turn with marks.
    assert client.session_id in platform.opened
    assert platform.opened[client.session_id]["deviceId"] == device.uuid
    assert platform.closed
    (turn,) = [t for t in platform.turns.values()]
    assert turn["outcome"] == "completed"
    assert turn["transcript"] == "what time is it"
    assert turn["replyText"] == "Hello there. Second part."
    assert turn["marks"]["firstAudioAt"] and turn["marks"]["speechEndAt"]
    assert (device.uuid, "offline") in platform.states


async def test_bad_token_is_refused_with_401_before_the_upgrade() -> None:
    from websockets.exceptions import InvalidStatus

    platform = FakePlatform()
    async with running_runtime(pipeline_for(), platform) as rt:
        client = DeviceClient(rt.ws_base, "od_dt_not-a-real-token")
        with pytest.raises(InvalidStatus) as info:
            await client.connect()
        assert info.value.response.status_code == 401
        client2 = DeviceClient(rt.ws_base, "")
        with pytest.raises(InvalidStatus) as info2:
            await client2.connect(headers={"Authorization": ""})
        assert info2.value.response.status_code == 401


async def test_abort_mid_reply_stops_audio_and_no_frame_follows_tts_stop() -> None:
    platform = FakePlatform()
    device = platform.add_device()
    long_reply = "".join(f"<chunk>Sentence number {i} of a long answer.</chunk>" for i in range(12))
    async with running_runtime(pipeline_for(long_reply), platform) as rt:
        client = DeviceClient(rt.ws_base, device.token)
        await client.speak(UTTERANCE)
        # Wait for some audio, then abort.
        while len(client.packets) < 8:
            await client.recv(5 * T)
        await client.send_text('{"type":"abort","reason":"wake_word_detected"}')
        stop = await client.next_json(lambda m: m["type"] == "tts" and m["state"] == "stop")
        assert stop
        stop_index = len(client.log)
        # Nothing but silence afterwards (the socket stays open after an abort).
        with pytest.raises(TimeoutError):
            while True:
                kind, _ = await client.recv(0.5 * T)
                assert kind != "audio", "audio after tts stop"
        assert all(k != "audio" for k, _ in client.log[stop_index:])
        # The paced sender never ran ahead: far fewer than the 12 sentences' audio.
        assert len(client.packets) < 60
        await client.close()
    turn = next(iter(platform.turns.values()))
    assert turn["outcome"] == "aborted"


async def test_close_after_turn_then_reconnect_remembers_the_previous_question() -> None:
    platform = FakePlatform()
    device = platform.add_device()
    seen: list[list[tuple[str, str]]] = []

    def make(_agent: Any) -> Pipeline:
        def reply(request: Any) -> str:
            seen.append([(m.role, m.content) for m in request.messages])
            return f"<chunk>Answer {len(seen)}.</chunk>"

        return double_pipeline(reply, "my name is Ada")

    async with running_runtime(make, platform) as rt:
        for _ in range(2):
            client = DeviceClient(rt.ws_base, device.token)
            await client.speak(UTTERANCE)
            assert await client.until_closed() == (1000, "turn_complete")
            await client.close()
    assert seen[0] == [("user", "my name is Ada")]
    assert seen[1] == [
        ("user", "my name is Ada"),
        ("assistant", "Answer 1."),
        ("user", "my name is Ada"),
    ]


async def test_second_connection_replaces_the_first() -> None:
    platform = FakePlatform()
    device = platform.add_device()
    async with running_runtime(pipeline_for(), platform) as rt:
        first = DeviceClient(rt.ws_base, device.token)
        await first.connect()
        await first.hello()
        second = DeviceClient(rt.ws_base, device.token)
        await second.connect()
        await second.hello()
        assert await first.until_closed() == (1000, "Replaced by a new device connection")
        # The new connection still works.
        await second.listen(ListenState.START, ListenMode.AUTO)
        await second.send_audio(UTTERANCE)
        assert await second.until_closed() == (1000, "turn_complete")
        await first.close()
        await second.close()
    # The replaced session did not mark the device offline while the new one was live.
    assert platform.states.count((device.uuid, "offline")) == 1


async def test_idle_connection_is_closed() -> None:
    platform = FakePlatform()
    device = platform.add_device()
    async with running_runtime(pipeline_for(), platform, RUNTIME_IDLE_TIMEOUT_S=0.3 * T) as rt:
        client = DeviceClient(rt.ws_base, device.token)
        await client.connect()
        await client.hello()
        code, reason = await client.until_closed(within=5 * T)
        assert (code, reason) == (1000, "idle timeout")
        await client.close()


async def test_malformed_frames_are_protocol_errors_and_other_sessions_carry_on() -> None:
    platform = FakePlatform()
    bad_device, good_device = platform.add_device(), platform.add_device()
    async with running_runtime(pipeline_for(), platform) as rt:
        good = DeviceClient(rt.ws_base, good_device.token)
        await good.connect()
        await good.hello()
        await good.listen(ListenState.START, ListenMode.AUTO)
        bad = DeviceClient(rt.ws_base, bad_device.token, version=3)
        await bad.connect()
        await bad.hello()
        await bad.listen(ListenState.START, ListenMode.AUTO)
        assert bad.ws is not None
        await bad.send_text("{not json")
        await bad.send_text('{"type":"teleport"}')
        await bad.ws.send(b"\x00\x00\x00\x05ab")  # v3 header says 5, carries 2
        code, _reason = await bad.until_closed()
        assert code == 1002
        await good.send_audio(UTTERANCE)
        assert await good.until_closed() == (1000, "turn_complete")
        assert good.packets
        await good.close()
        await bad.close()
    kinds = [e["kind"] for e in platform.events]
    assert kinds.count("protocol_error") >= 3
    metrics = rt.app.ctx.metrics
    assert metrics.protocol_errors.get(kind="device") >= 3


async def test_api_down_during_a_session_the_turn_goes_on_and_records_are_retried() -> None:
    platform = FakePlatform()
    device = platform.add_device()
    async with running_runtime(pipeline_for(), platform) as rt:
        client = DeviceClient(rt.ws_base, device.token)
        await client.connect()
        await client.hello()
        platform.down = True
        await client.listen(ListenState.START, ListenMode.AUTO)
        await client.send_audio(UTTERANCE)
        assert await client.until_closed() == (1000, "turn_complete")
        assert client.packets
        await asyncio.sleep(0.3 * T)
        assert not platform.turns  # nothing could be written yet
        assert rt.app.ctx.records.pending > 0
        platform.down = False
        for _ in range(int(100 * T)):
            if platform.turns and platform.closed:
                break
            await asyncio.sleep(0.05)
        await client.close()
    (turn,) = platform.turns.values()
    assert turn["outcome"] == "completed"
    assert client.session_id in platform.closed


class _DownSTT:
    name = "deepgram"

    async def stream(self, audio: Any, options: Any) -> Any:
        raise ProviderUnavailable("deepgram", "HTTP 503")
        yield  # an async generator that fails before any output


class _DownTTS:
    name = "azure"

    async def stream(self, text: str, options: Any) -> Any:
        raise ProviderTimeout("azure", "no audio within 3 s")
        yield


async def test_the_record_names_who_served_each_stage_and_every_fallback() -> None:
    def make(_agent: Any) -> Pipeline:
        pipeline = double_pipeline("<chunk>Hello there.</chunk>", "what time is it")
        return replace(
            pipeline,
            stt=FallbackSTT([_DownSTT(), pipeline.stt]),
            tts=FallbackTTS([_DownTTS(), pipeline.tts]),
        )

    platform = FakePlatform()
    device = platform.add_device()
    async with running_runtime(make, platform) as rt:
        client = DeviceClient(rt.ws_base, device.token)
        await client.speak(UTTERANCE)
        assert await client.until_closed(within=30 * T) == (1000, "turn_complete")
    assert final_stt(client.messages) == "what time is it"
    (turn,) = platform.turns.values()
    providers = {span["stage"]: span.get("provider") for span in turn["timeline"]}
    assert providers["stt_final"] == "scripted-stt"
    assert providers["llm_first_delta"] == "function-llm"
    assert providers["tts_request"] == "function-tts"
    first_audio = next(s for s in turn["timeline"] if s["stage"] == "first_audio")
    assert first_audio.get("provider") is None  # a point of the turn, no stage
    fallbacks = [e for e in platform.events if e["kind"] == "provider_fallback"]
    assert {
        (e["payload"]["stage"], e["payload"]["from"], e["payload"]["to"]) for e in fallbacks
    } == {
        ("stt", "deepgram", "scripted-stt"),
        ("tts", "azure", "function-tts"),
    }
    assert all(e["turnId"] == turn["id"] for e in fallbacks)
    assert any("HTTP 503" in e["payload"]["message"] for e in fallbacks)
