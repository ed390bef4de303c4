"""Property tests: no parser raises, whatever arrives; round trips hold."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.protocol import mcp
from runtime.protocol.browser import parse_browser_event, parse_browser_message
from runtime.protocol.chunks import ChunkParser, split_sentences
from runtime.protocol.device import parse_device_message, parse_server_message
from runtime.protocol.errors import ProtocolError
from runtime.protocol.framing import Frame, FrameKind, framing_for, negotiate_version
from runtime.protocol.opus_packet import inspect_opus_packet
from runtime.protocol.realtime import (
    AudioAppend,
    AudioDelta,
    ItemTruncate,
    ServerEvent,
    parse_client_event,
    parse_server_event,
)

# The coverage gate re-runs these tests in a child process; coverage needs few examples.
_EXAMPLES = 25 if os.environ.get("OPENDOT_PROTOCOL_COVERAGE_CHILD") == "1" else 300
FUZZ = settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
type_names = st.sampled_from(
    [
        "hello",
        "listen",
        "abort",
        "mcp",
        "stt",
        "llm",
        "tts",
        "alert",
        "system",
        "iot",
        "finalize",
        "force_response",
        "reset",
        "interrupt",
        "configure",
        "user_final",
        "assistant_audio",
        "timeline",
        "error",
        "HELLO",
    ]
)
field_names = st.sampled_from(
    [
        "state",
        "mode",
        "text",
        "session_id",
        "version",
        "features",
        "audio_params",
        "transport",
        "payload",
        "reason",
        "status",
        "message",
        "emotion",
        "command",
        "turnId",
        "chunkIndex",
        "sessionId",
        "agentId",
        "agentName",
    ]
)
messages = st.builds(
    lambda kind, fields: json.dumps({"type": kind, **fields}),
    type_names | st.text(max_size=8),
    st.dictionaries(
        field_names,
        json_values
        | st.sampled_from(["start", "stop", "detect", "auto", "sentence_start", "opus"]),
        max_size=6,
    ),
)
texts = messages | st.text(max_size=200) | st.binary(max_size=200)


@FUZZ
@given(texts)
def test_json_parsers_never_raise(text: str | bytes) -> None:
    for parse in (
        parse_device_message,
        parse_server_message,
        parse_browser_message,
        parse_browser_event,
    ):
        parse(text)


@FUZZ
@given(st.sampled_from([1, 2, 3]), st.binary(max_size=300))
def test_framing_never_raises(version: int, data: bytes) -> None:
    result = framing_for(version).parse(data)
    assert isinstance(result, Frame | ProtocolError)


@FUZZ
@given(
    st.sampled_from([2, 3]),
    st.sampled_from(list(FrameKind)),
    st.binary(min_size=1, max_size=300),
    st.integers(0, 2**32 - 1),
)
def test_framing_round_trip(version: int, kind: FrameKind, payload: bytes, ts: int) -> None:
    framing = framing_for(version)
    frame = Frame(kind, payload, ts if version == 2 else 0)
    parsed = framing.parse(framing.serialize(frame))
    if kind == FrameKind.JSON or not isinstance(inspect_opus_packet(payload), ProtocolError):
        assert parsed == frame
    else:
        assert isinstance(parsed, ProtocolError)


@FUZZ
@given(st.binary(max_size=400))
def test_opus_inspection_never_raises(data: bytes) -> None:
    inspect_opus_packet(data)


@FUZZ
@given(st.one_of(st.none(), st.text(max_size=12)), json_values | st.binary(max_size=8))
def test_negotiation_never_raises(header: str | None, hello: object) -> None:
    assert negotiate_version(header, hello) in (1, 2, 3)


markup = st.lists(
    st.sampled_from(
        [
            "<chunk>",
            "</chunk>",
            "<CHUNK a='1'>",
            "<",
            ">",
            "</",
            "<b>",
            " ",
            "\n",
            ". ",
            "x",
            "é",
            "!",
            "&amp;",
            "<chunk/>",
        ]
    )
    | st.text(max_size=6),
    max_size=30,
)


@FUZZ
@given(markup, st.data())
def test_chunk_parser_never_raises_and_ignores_split_points(
    pieces: list[str], data: st.DataObject
) -> None:
    text = "".join(pieces)
    whole = ChunkParser()
    expected = whole.feed(text) + whole.finish()
    assert all(chunk and chunk == chunk.strip() and "  " not in chunk for chunk in expected)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    parser = ChunkParser()
    out: list[str] = []
    start = 0
    for cut in [*cuts, len(text)]:
        out += parser.feed(text[start:cut])
        start = cut
    out += parser.finish()
    assert out == expected


@FUZZ
@given(st.text(max_size=300))
def test_split_sentences_never_raises(text: str) -> None:
    for sentence in split_sentences(text):
        assert sentence and sentence == sentence.strip()


rpc_fields = st.sampled_from(
    ["jsonrpc", "id", "method", "params", "result", "error", "tools", "nextCursor"]
)
rpc_payloads = (
    st.dictionaries(
        rpc_fields,
        json_values | st.sampled_from(["2.0", "tools/list", "initialize", 1, 7.0]),
        max_size=6,
    )
    | json_values
)
tool_entries = st.lists(
    st.dictionaries(
        st.sampled_from(["name", "description", "inputSchema", "annotations"]),
        json_values | st.fixed_dictionaries({"type": st.sampled_from(["object", "array"])}),
        max_size=4,
    )
    | json_values,
    max_size=5,
)


@FUZZ
@given(rpc_payloads, tool_entries, json_values)
def test_mcp_parsers_never_raise(payload: object, tools: list[object], content: object) -> None:
    parsed = mcp.parse_payload(payload)
    assert isinstance(
        parsed, mcp.Request | mcp.Notification | mcp.Result | mcp.Error | ProtocolError
    )
    page = mcp.parse_tools_page({"tools": tools, "nextCursor": content})
    if isinstance(page, mcp.ToolsPage):
        assert len(page.tools) + len(page.dropped) == len(tools)
    mcp.parse_call_result({"content": content, "isError": content})
    mcp.parse_call_result({"content": [content], "structuredContent": content})
    mcp.parse_initialize({"serverInfo": content, "protocolVersion": content})
    mcp.parse_vision({"capabilities": {"vision": content}})


@FUZZ
@given(st.integers(-(2**31), 2**31), st.text(max_size=30), json_values)
def test_mcp_requests_round_trip(rid: int, name: str, value: object) -> None:
    request = mcp.tools_call(rid, name, {"v": value})
    parsed = mcp.parse_payload(json.loads(json.dumps(request.to_payload())))
    assert isinstance(parsed, mcp.Request)
    assert (parsed.id, parsed.method) == (rid, "tools/call")
    assert parsed.params is not None and parsed.params["name"] == name


realtime_types = st.sampled_from(
    [
        "error",
        "session.created",
        "session.update",
        "session.updated",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.create",
        "conversation.item.truncate",
        "conversation.item.added",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed",
        "response.create",
        "response.cancel",
        "response.created",
        "response.output_item.added",
        "response.output_audio.delta",
        "response.audio_transcript.delta",
        "response.function_call_arguments.done",
        "response.done",
        "rate_limits.updated",
    ]
)
realtime_fields = st.sampled_from(
    [
        "item_id",
        "audio_end_ms",
        "audio_start_ms",
        "delta",
        "audio",
        "transcript",
        "response",
        "item",
        "error",
        "session",
        "rate_limits",
        "usage",
        "response_id",
        "previous_item_id",
        "content_index",
    ]
)
realtime_events = st.builds(
    lambda kind, fields: json.dumps({"type": kind, **fields}),
    realtime_types | st.text(max_size=8),
    st.dictionaries(
        realtime_fields,
        json_values | st.sampled_from(["AAE=", "!!", "item_1"]),
        max_size=5,
    ),
)


@FUZZ
@given(realtime_events | st.text(max_size=200) | st.binary(max_size=200))
def test_realtime_parsers_never_raise(text: str | bytes) -> None:
    assert isinstance(parse_server_event(text), ServerEvent | ProtocolError)
    parse_client_event(text)


# Text the JSON loader keeps as is (it replaces lone surrogates and drops NULs).
storable_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20
)


@FUZZ
@given(st.binary(max_size=600), storable_text, st.integers(0, 10**7))
def test_realtime_client_events_round_trip(pcm: bytes, item_id: str, end_ms: int) -> None:
    assert parse_client_event(AudioAppend(pcm).to_json()) == AudioAppend(pcm)
    truncate = ItemTruncate(item_id or "i", end_ms)
    assert parse_client_event(truncate.to_json()) == truncate
    delta = AudioDelta("r", item_id, pcm)
    assert parse_server_event(delta.to_json()) == delta
