"""The tool executor's rules: names, schemas, redaction, timeouts, failures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.pipeline.interfaces import LlmRequest, Message, ToolCall, ToolResult, ToolSpec
from runtime.providers.echo_llm import TOOL_LABEL, EchoLLM, tool_demo
from runtime.tools.box import (
    CallRecord,
    StaticSource,
    ToolBox,
    ToolDef,
    ToolError,
    ToolLimits,
    ToolOutput,
    redact_arguments,
)
from runtime.tools.names import MAX_NAME, NameMap, api_name
from shared.tool_schema import argument_problems, object_schema, parse_arguments, schema_problems


def test_names_map_back_exactly() -> None:
    names = NameMap()
    a = names.add("device:self.audio_speaker.set_volume", "self.audio_speaker.set_volume")
    b = names.add("mcp:x:self.audio_speaker.set_volume", "self.audio_speaker.set_volume")
    assert (a, b) == ("self_audio_speaker_set_volume", "self_audio_speaker_set_volume_2")
    assert names.real(a) == "device:self.audio_speaker.set_volume"
    assert names.real(b) == "mcp:x:self.audio_speaker.set_volume"
    assert names.add("device:self.audio_speaker.set_volume") == a
    assert names.api("nope") is None and names.real("nope") is None
    long = api_name("x" * 100)
    assert len(long) == MAX_NAME and long != api_name("x" * 99)
    assert api_name("  ") == "tool" and api_name("héllo wörld") == "h_llo_w_rld"


@pytest.mark.parametrize(
    ("schema", "args", "problems"),
    [
        (
            object_schema({"v": {"type": "integer", "minimum": 0, "maximum": 9}}, ["v"]),
            {"v": 3},
            [],
        ),
        (object_schema({"v": {"type": "integer"}}, ["v"]), {}, ["v is required"]),
        (object_schema({"v": {"type": "integer"}}), {"v": True}, ["v must be integer"]),
        (object_schema({"v": {"type": "integer"}}), {"v": 2.0}, []),
        (
            object_schema({"v": {"type": "number", "minimum": 1}}),
            {"v": 0.5},
            ["v must be at least 1"],
        ),
        (
            object_schema({"v": {"type": "string", "maxLength": 2}}),
            {"v": "abc"},
            ["v must have at most 2 characters"],
        ),
        (
            object_schema({"v": {"type": "string", "minLength": 2}}),
            {"v": "a"},
            ["v must have at least 2 characters"],
        ),
        (object_schema({"v": {"enum": ["a", "b"]}}), {"v": "c"}, ['v must be one of "a", "b"']),
        (object_schema({"v": {"const": 1}}), {"v": 2}, ["v must be 1"]),
        (object_schema({"v": {"type": ["string", "null"]}}), {"v": None}, []),
        (
            object_schema({"v": {"anyOf": [{"type": "string"}, {"type": "null"}]}}),
            {"v": 3},
            ["v does not match any allowed form"],
        ),
        (
            object_schema({"v": {"type": "array", "items": {"type": "integer"}}}),
            {"v": [1, "x"]},
            ["v[1] must be integer"],
        ),
        (
            {"type": "object", "additionalProperties": False},
            {"x": 1},
            ["x is not a known parameter"],
        ),
        (
            {"type": "object", "additionalProperties": {"type": "string"}},
            {"x": 1},
            ["x must be string"],
        ),
        (
            object_schema({"o": object_schema({"i": {"type": "boolean"}}, ["i"])}),
            {"o": {}},
            ["o.i is required"],
        ),
        (
            {"type": "object", "properties": {"v": {"$ref": "#/x", "format": "date"}}},
            {"v": "anything"},
            [],
        ),
        ({"type": "object"}, [1], ["the arguments must be a JSON object"]),
    ],
)
def test_argument_problems(schema: dict[str, Any], args: Any, problems: list[str]) -> None:
    assert argument_problems(schema, args) == problems


def test_parse_arguments() -> None:
    assert parse_arguments(None) == {} and parse_arguments(" ") == {}
    assert parse_arguments({"a": 1}) == {"a": 1}
    assert parse_arguments('{"a": 1}') == {"a": 1}
    assert parse_arguments("{") == "the arguments are not valid JSON"
    assert parse_arguments("[1]") == "the arguments must be a JSON object"


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ([], "must be a JSON schema object"),
        ({"type": "string"}, 'its "type" must be "object"'),
        ({"type": "object", "x": float("nan")}, "plain JSON"),
        ({"type": "object", "d": "x" * 20000}, "at most"),
        ({"type": "object", "properties": []}, "properties must be an object"),
        ({"type": "object", "properties": {"a": {"type": "date"}}}, "type at a must be one of"),
        ({"type": "object", "properties": {"a": 3}}, "schema at a must be a JSON object"),
        ({"type": "object", "required": [1]}, "required must be a list"),
        ({"type": "object", "properties": {}, "required": ["a"]}, "names a, which is not among"),
        ({"type": "object", "properties": {"a": {"enum": []}}}, "enum at a must be a non-empty"),
        (
            {"type": "object", "properties": {"a": {"type": "array", "items": 1}}},
            "schema at a[] must",
        ),
    ],
)
def test_schema_problems_are_sentences(schema: Any, fragment: str) -> None:
    problem = schema_problems(schema)
    assert problem is not None and fragment in problem and problem.endswith(".")


def test_good_schema_has_no_problem() -> None:
    nested = object_schema(
        {"a": {"type": "array", "items": object_schema({"b": {"type": "string"}})}}
    )
    assert schema_problems(nested) is None


def test_redaction() -> None:
    value = {
        "apiKey": "x",
        "note": "use sk-live-123 now",
        "deep": [{"password": 1}],
        "long": "y" * 300,
    }
    shown = redact_arguments(value, ["sk-live-123"])
    assert shown["apiKey"] == "[redacted]" and shown["deep"] == [{"password": "[redacted]"}]
    assert shown["note"] == "use [redacted] now" and len(shown["long"]) == 200
    assert (
        redact_arguments({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}, [])["a"]["b"]["c"]["d"]["e"]
        == "…"
    )


def _tool(name: str, **kw: Any) -> ToolDef:
    return ToolDef(f"builtin:{name}", name, "builtin", name, {"type": "object"}, **kw)


async def test_failures_become_results() -> None:
    records: list[CallRecord] = []
    source = StaticSource()

    async def hang(_a: dict[str, Any]) -> str:
        await asyncio.Event().wait()
        return ""

    def boom(_a: dict[str, Any]) -> str:
        raise RuntimeError("internal detail")

    def refuse(_a: dict[str, Any]) -> str:
        raise ToolError("the service said no")

    source.add(_tool("hang", timeout_s=0.01), hang)
    source.add(_tool("boom"), boom)
    source.add(_tool("refuse"), refuse)
    source.add(_tool("big"), lambda _a: "z" * 10_000)
    source.add(_tool("typed"), lambda _a: ToolOutput("typed", True))
    box = ToolBox([source], ToolLimits(max_calls_per_turn=10), on_call=records.append)
    assert [s.name for s in box.specs()] == ["hang", "boom", "refuse", "big", "typed"]
    assert (await box.call("hang", "{}", "c1")) == ToolResult(
        "c1", "hang", "hang did not answer within 0.01 s.", True
    )
    assert (await box.call("boom", None)).output == "boom failed (RuntimeError)."
    assert (await box.call("refuse", {})).output == "the service said no"
    big = await box.call("big", "{}")
    assert len(big.output) == 8192 and not big.is_error
    assert await box.call("typed", "{}") == ToolResult("", "typed", "typed", True)
    assert box.real_name("boom") == "boom" and box.real_name("zzz") is None
    assert records[0].to_event()["error"] == "hang did not answer within 0.01 s."
    assert box.calls_this_turn == 5 and box.budget_left == 5
    box.begin_turn()
    assert box.budget_left == 10


async def test_echo_tool_demo_is_labelled_and_deterministic() -> None:
    spec = ToolSpec("self_audio_speaker_set_volume", "Set volume", {"type": "object"})
    ask = LlmRequest("", [Message("user", "Please set the volume to 40.")], tools=[spec])
    call = tool_demo(ask)
    assert call == ToolCall("echo-tool-demo", spec.name, '{"volume": 40}')
    answered = LlmRequest(
        "",
        [*ask.messages, ToolResult("echo-tool-demo", spec.name, "true")],
        tools=[spec],
    )
    reply = tool_demo(answered)
    assert (
        isinstance(reply, str)
        and reply.startswith(f"<chunk>{TOOL_LABEL}")
        and "answered: true" in reply
    )
    failed = tool_demo(
        LlmRequest("", [*ask.messages, ToolResult("x", spec.name, "no", True)], tools=[spec])
    )
    assert isinstance(failed, str) and "could not do it" in failed
    assert tool_demo(LlmRequest("", [Message("user", "set the volume to 40")])) is None
    assert tool_demo(LlmRequest("", [Message("user", "hello")], tools=[spec])) is None
    assert tool_demo(LlmRequest("", ask.messages, tools=[spec], tool_choice="none")) is None
    outputs = [out async for out in EchoLLM().stream(ask)]
    assert outputs == [call]
    text = "".join([o async for o in EchoLLM().stream(answered) if isinstance(o, str)])
    assert text == reply
