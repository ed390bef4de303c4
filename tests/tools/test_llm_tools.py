"""Function calling through the OpenAI-compatible stage, against a loopback fake
server on both APIs: streamed and whole answers, parallel calls, malformed
arguments, the step limit and the call budget."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from runtime.pipeline.interfaces import LlmRequest, Message
from runtime.providers.http import aclose_shared_clients
from runtime.providers.openai_llm import OpenAICompatibleLLM
from runtime.tools.box import CallRecord, StaticSource, ToolBox, ToolDef, ToolLimits
from runtime.tools.loop import Filler, run_tool_loop
from shared.tool_schema import object_schema
from tests.tools.servers import Calls, FakeToolModel, serve

VOLUME = ToolDef(
    key="device:self.audio_speaker.set_volume",
    name="self.audio_speaker.set_volume",
    source="device",
    description="Set the speaker volume.",
    parameters=object_schema(
        {"volume": {"type": "integer", "minimum": 0, "maximum": 100}}, ["volume"]
    ),
)
WEATHER = ToolDef(
    key="webhook:weather",
    name="weather",
    source="webhook",
    description="Weather in a city.",
    parameters=object_schema({"city": {"type": "string"}}, ["city"]),
)


class Recorder:
    def __init__(self) -> None:
        self.volumes: list[int] = []
        self.records: list[CallRecord] = []

    def box(self, **limits: Any) -> ToolBox:
        source = StaticSource()

        async def set_volume(args: dict[str, Any]) -> str:
            self.volumes.append(args["volume"])
            return "true"

        source.add(VOLUME, set_volume)
        source.add(WEATHER, lambda args: {"city": args["city"], "sky": "clear"})
        return ToolBox([source], ToolLimits(**limits), on_call=self.records.append)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeToolModel, str]]:
    model = FakeToolModel()
    async with serve(model.app()) as base:
        yield model, base + "/v1"
    await aclose_shared_clients()


def make_llm(base: str, api: str, stream: bool) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(
        settings={"api": api, "stream": stream, "max_retries": 0},
        model="gpt-test",
        base_url=base,
        key=None,
        allow_private=True,
    )


def request(text: str) -> LlmRequest:
    return LlmRequest(instructions="Be brief.", messages=[Message("user", text)])


async def spoken(llm: OpenAICompatibleLLM, text: str, box: ToolBox, **kw: Any) -> str:
    out: list[str] = []
    async for piece in run_tool_loop(llm, request(text), box, **kw):
        assert not isinstance(piece, Filler)
        out.append(piece)
    return "".join(out)


API_MODES = [
    ("responses", True),
    ("chat_completions", True),
    ("responses", False),
    ("chat_completions", False),
]


@pytest.mark.parametrize(("api", "stream"), API_MODES)
async def test_parallel_calls_are_run_and_fed_back(
    fake: tuple[FakeToolModel, str], api: str, stream: bool
) -> None:
    model, base = fake
    model.calls = lambda _text, names: [
        (names[0], json.dumps({"volume": 30})),
        (names[1], json.dumps({"city": "Zurich"})),
    ]
    rec = Recorder()
    box = rec.box()
    said = await spoken(make_llm(base, api, stream), "volume 30 and the weather", box)
    assert rec.volumes == [30]
    assert said == '<chunk>Done: true | {"city": "Zurich", "sky": "clear"}</chunk>'
    assert len(model.requests) == 2
    first, second = model.requests[0][1], model.requests[1][1]
    names = FakeToolModel.tool_names(model.requests[0][0], first)
    # The firmware's dotted name reaches the model in a form its API accepts.
    assert names == ["self_audio_speaker_set_volume", "weather"]
    assert first["tool_choice"] == "auto"
    if api == "responses":
        kinds = [i.get("type") for i in second["input"]]
        assert kinds.count("function_call") == 2 and kinds.count("function_call_output") == 2
        assert all("id" not in i for i in second["input"] if i.get("type") == "function_call")
    else:
        assistant = next(m for m in second["messages"] if m.get("tool_calls"))
        assert [c["id"] for c in assistant["tool_calls"]] == ["call_0", "call_1"]
        assert [m["tool_call_id"] for m in second["messages"] if m["role"] == "tool"] == [
            "call_0",
            "call_1",
        ]
    assert [(r.tool, r.source, r.error) for r in rec.records] == [
        ("self.audio_speaker.set_volume", "device", None),
        ("weather", "webhook", None),
    ]
    assert rec.records[0].arguments == {"volume": 30} and rec.records[0].result_bytes == 4


@pytest.mark.parametrize(("api", "stream"), API_MODES[:2])
async def test_malformed_arguments_never_reach_the_tool(
    fake: tuple[FakeToolModel, str], api: str, stream: bool
) -> None:
    model, base = fake
    model.calls = lambda _text, names: [
        (names[0], '{"volume": "loud"'),
        (names[0], '{"volume": 150}'),
        (names[0], '["volume"]'),
        ("no_such_tool", "{}"),
    ]
    rec = Recorder()
    said = await spoken(make_llm(base, api, stream), "make it loud", rec.box())
    assert rec.volumes == []
    assert "not valid JSON" in said
    assert "volume must be at most 100" in said
    assert "must be a JSON object" in said
    assert "There is no tool named no_such_tool" in said
    assert all(r.error for r in rec.records)
    assert rec.records[-1].source == "unknown"


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_step_limit_and_call_budget_end_in_words(
    fake: tuple[FakeToolModel, str], api: str
) -> None:
    model, base = fake
    rounds: list[int] = []

    def always(_text: str, names: list[str]) -> Calls:
        rounds.append(1)
        return [(names[0], json.dumps({"volume": len(rounds)}))] if names else []

    model.calls = always
    # The fake stops calling once results are in; make it call again on every step.
    model.tool_outputs = staticmethod(lambda _api, _body: [])  # type: ignore[method-assign]
    rec = Recorder()
    box = rec.box(max_steps=3, max_calls_per_turn=2)
    await spoken(make_llm(base, api, True), "again and again", box)
    choices = [body.get("tool_choice") for _, body, _ in model.requests]
    # Two calls spend the budget; the third request may no longer call tools.
    assert choices == ["auto", "auto", "none"]
    assert rec.volumes == [1, 2]


async def test_filler_while_a_tool_is_slow(fake: tuple[FakeToolModel, str]) -> None:
    model, base = fake
    model.calls = lambda _text, names: [(names[0], "{}")]
    gate = asyncio.Event()
    slow = ToolDef("builtin:slow", "slow", "builtin", "A slow tool.", {"type": "object"})
    source = StaticSource()

    async def wait(_args: dict[str, Any]) -> str:
        await gate.wait()
        return "finally"

    source.add(slow, wait)
    box = ToolBox([source])
    pieces: list[str | Filler] = []
    async for piece in run_tool_loop(
        make_llm(base, "chat_completions", True),
        request("slow"),
        box,
        filler="One moment.",
        filler_after_s=0.01,
    ):
        pieces.append(piece)
        if isinstance(piece, Filler):
            gate.set()
    assert pieces[0] == Filler("One moment.")
    assert "".join(p for p in pieces[1:] if isinstance(p, str)) == "<chunk>Done: finally</chunk>"
