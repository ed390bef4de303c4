"""The semantic end-of-turn machine, and the stream that drives it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from runtime.pipeline.doubles import EnergyVAD, loud_frame, silence_frame
from runtime.pipeline.interfaces import VadEvent, VadEventKind, VadOptions
from runtime.pipeline.semantic_vad import SemanticVAD, SemanticVadStream
from runtime.pipeline.turn_end import EndTurn, Judge, TurnEnd, TurnEndConfig

CONFIG = TurnEndConfig(short_ms=200, long_ms=1500, threshold=0.5, fallback_ms=700)


def _paused(machine: TurnEnd, at: int = 1000) -> Judge:
    machine.speech_start()
    (judge,) = machine.pause(at)
    assert isinstance(judge, Judge)
    return judge


def test_a_finished_utterance_ends_at_once() -> None:
    machine = TurnEnd(CONFIG)
    judge = _paused(machine)
    assert machine.verdict(judge.pause_id, 0.9) == [EndTurn(1000, "complete", 0.9)]
    assert not machine.in_utterance


def test_an_unfinished_one_waits_for_the_long_silence() -> None:
    machine = TurnEnd(CONFIG)
    judge = _paused(machine)
    assert machine.verdict(judge.pause_id, 0.2) == []
    assert machine.advance(2000) == []  # 1000 ms of silence: still listening
    assert machine.advance(2500) == [EndTurn(1000, "long_silence", 0.2)]


def test_speech_again_makes_the_pause_part_of_the_utterance() -> None:
    machine = TurnEnd(CONFIG)
    judge = _paused(machine)
    machine.resume()
    assert machine.verdict(judge.pause_id, 0.95) == []  # stale: the person went on
    assert machine.advance(9000) == []
    second = machine.pause(9000)
    assert second == [Judge(judge.pause_id + 1, 9000)]


def test_no_verdict_falls_back_to_the_fixed_silence() -> None:
    machine = TurnEnd(CONFIG)
    judge = _paused(machine)
    assert machine.verdict(judge.pause_id, None) == []
    assert machine.advance(1600) == []
    assert machine.advance(1700) == [EndTurn(1000, "fallback", None)]


def test_a_verdict_that_never_comes_ends_at_the_long_silence() -> None:
    machine = TurnEnd(CONFIG)
    _paused(machine)
    assert machine.advance(2499) == []
    assert machine.advance(2500) == [EndTurn(1000, "long_silence", None)]


def test_inputs_out_of_place_do_nothing() -> None:
    machine = TurnEnd(CONFIG)
    assert machine.pause(10) == [] and machine.advance(10_000) == []
    assert machine.verdict(1, 0.9) == []
    machine.resume()
    assert not machine.in_utterance


# --- the stream ----------------------------------------------------------------------------


class FakeJudge:
    """Answers each judgement when the test says so."""

    name = "fake-judge"

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future[float | None]] = []
        self.audio: list[np.ndarray] = []

    async def judge(self, audio: np.ndarray) -> float | None:
        self.audio.append(audio)
        future: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        return await future


async def _speak(stream: SemanticVadStream, ms: int) -> list[VadEvent]:
    events: list[VadEvent] = []
    for _ in range(ms // 60):
        events += await stream.feed(loud_frame())
    return events


async def _quiet(stream: SemanticVadStream, ms: int) -> list[VadEvent]:
    events: list[VadEvent] = []
    for _ in range(ms // 60):
        events += await stream.feed(silence_frame())
        await asyncio.sleep(0)  # the energy double never yields; a judgement task may start
    return events


@pytest.fixture
def judge() -> FakeJudge:
    return FakeJudge()


def _open(judge: FakeJudge) -> SemanticVadStream:
    vad = SemanticVAD(EnergyVAD(), judge)  # type: ignore[arg-type]
    stream = vad.open(VadOptions(endpointing_ms=300, semantic=CONFIG))
    assert isinstance(stream, SemanticVadStream)
    return stream


async def test_off_gives_the_plain_stream(judge: FakeJudge) -> None:
    vad = SemanticVAD(EnergyVAD(), judge)  # type: ignore[arg-type]
    assert not isinstance(vad.open(VadOptions()), SemanticVadStream)


async def test_complete_verdict_reaches_the_listener_between_feeds(judge: FakeJudge) -> None:
    stream = _open(judge)
    heard: list[VadEvent] = []
    stream.listen(heard.extend)
    assert [e.kind for e in await _speak(stream, 600)] == [VadEventKind.SPEECH_START]
    assert await _quiet(stream, 300) == []  # the pause was noticed: judging
    assert len(judge.waiting) == 1
    assert len(judge.audio[0]) >= 16 * 600  # the utterance (and a little before) is judged
    judge.waiting[0].set_result(0.9)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [e.kind for e in heard] == [VadEventKind.SPEECH_END]
    assert 600 <= heard[0].at_ms <= 720


async def test_incomplete_verdict_waits_and_swallows_the_resumed_start(judge: FakeJudge) -> None:
    stream = _open(judge)
    stream.listen(lambda events: pytest.fail(f"unexpected {events}"))
    await _speak(stream, 600)
    await _quiet(stream, 300)
    judge.waiting[0].set_result(0.1)
    await asyncio.sleep(0)
    assert await _quiet(stream, 600) == []  # 900 ms of pause: still the same turn
    assert await _speak(stream, 600) == []  # speech again: no second SPEECH_START
    assert await _quiet(stream, 300) == []
    assert len(judge.waiting) == 2


async def test_long_silence_ends_without_a_verdict_and_late_events_go_to_feed(
    judge: FakeJudge,
) -> None:
    stream = _open(judge)  # no listener: late events come out of the next feed
    await _speak(stream, 600)
    events = await _quiet(stream, 1800)
    assert [e.kind for e in events] == [VadEventKind.SPEECH_END]
    judge.waiting[0].set_result(0.99)  # far too late: ignored
    await asyncio.sleep(0)
    assert await _quiet(stream, 120) == []
    stream.close()
    assert await stream.feed(loud_frame()) == []


# --- the agent's settings ------------------------------------------------------------------


def _agent(**vad: object) -> dict[str, object]:
    return {"id": "a1", "name": "A", "pipeline": [{"id": "vad", "settings": vad}]}


def test_agent_settings_reach_the_vad_options() -> None:
    from runtime.session.agent import turn_config
    from tests.runtime.harness import test_settings

    settings = test_settings()
    default = turn_config(_agent(), settings)
    assert default.vad.semantic == TurnEndConfig(100, 1500, 0.9, fallback_ms=300)
    assert default.barge_in and default.barge_in_min_ms == 500
    tuned = turn_config(
        _agent(
            semantic_short_ms="300",
            semantic_long_ms="2000",
            semantic_threshold=0.6,
            endpointing="500",
            barge_in=False,
        ),
        settings,
    )
    assert tuned.vad.semantic == TurnEndConfig(300, 2000, 0.6, fallback_ms=500)
    assert not tuned.barge_in
    off = turn_config(_agent(semantic_turn=False), settings)
    assert off.vad.semantic is None and off.vad.endpointing_ms == 300
    # Values outside the choices fall back to the defaults, never to nonsense.
    odd = turn_config(_agent(semantic_short_ms="7", semantic_threshold=5), settings)
    assert odd.vad.semantic is not None
    assert odd.vad.semantic.short_ms == 100 and odd.vad.semantic.threshold == 0.95
