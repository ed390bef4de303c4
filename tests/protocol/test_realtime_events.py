"""OpenAI Realtime events: literal JSON both ways, liberal reading, errors as values.

The SDK's generated models (openai.types.realtime) are the schema oracle: every
event this runtime or its fake provider writes must validate against them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import TypeAdapter

from runtime.protocol.errors import ProtocolError
from runtime.protocol.realtime import (
    MAX_EVENT_BYTES,
    AudioAppend,
    AudioClear,
    AudioCommit,
    AudioDelta,
    AudioDone,
    BufferCleared,
    BufferCommitted,
    Error,
    FunctionCall,
    InputTranscript,
    InputTranscriptDelta,
    InputTranscriptFailed,
    ItemAdded,
    ItemCreate,
    ItemTruncate,
    ItemTruncated,
    OutputItemAdded,
    RateLimit,
    RateLimitsUpdated,
    ResponseCancel,
    ResponseCreate,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    SessionCreated,
    SessionUpdate,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TranscriptDelta,
    TranscriptDone,
    Unknown,
    parse_client_event,
    parse_server_event,
)
from runtime.protocol.realtime_session import (
    FunctionCallOutput,
    MessageItem,
    SessionConfig,
    TurnDetection,
    item_from_dict,
)

CLIENT = TypeAdapter(RealtimeClientEvent)
SERVER = TypeAdapter(RealtimeServerEvent)
PCM = b"\x01\x00\xff\x7f" * 8

CONFIG = SessionConfig(
    instructions="Be brief.",
    voice="cedar",
    model="gpt-realtime-2",
    turn_detection=TurnDetection("server_vad", threshold=0.6, silence_duration_ms=400),
    transcription_language="en",
    reasoning_effort="low",
    tools=({"type": "function", "name": "time", "parameters": {"type": "object"}},),
)

CLIENT_EVENTS = [
    SessionUpdate(CONFIG),
    SessionUpdate(SessionConfig(turn_detection=None, transcription_model=None)),
    SessionUpdate(SessionConfig(turn_detection=TurnDetection(eagerness="high"))),
    AudioAppend(PCM),
    AudioCommit(),
    AudioClear(),
    ItemCreate(MessageItem("user", "what time is it")),
    ItemCreate(MessageItem("assistant", "noon"), previous_item_id="item_1"),
    ItemCreate(MessageItem("system", "be kind")),
    ItemCreate(FunctionCallOutput("call_1", '{"time": "12:00"}')),
    ItemTruncate("item_2", 1380),
    ItemTruncate("item_2", 0, content_index=1),
    ResponseCreate(),
    ResponseCancel(),
    ResponseCancel("resp_1"),
]

SERVER_EVENTS: list[ServerEvent] = [
    Error("invalid_request_error", "Unknown parameter.", code="unknown_parameter", param="x"),
    Error("server_error", "boom"),
    SessionCreated(CONFIG),
    SessionUpdated(SessionConfig(turn_detection=None)),
    SpeechStarted("item_1", 120),
    SpeechStopped("item_1", 1800),
    BufferCommitted("item_1", "item_0"),
    BufferCommitted("item_1"),
    BufferCleared(),
    InputTranscriptDelta("item_1", "what"),
    InputTranscript("item_1", "what time is it", 1.5),
    InputTranscriptFailed("item_1", "could not transcribe", "audio_unintelligible"),
    InputTranscriptFailed("item_1", "could not transcribe"),
    ItemAdded("item_1", "message", "user", "item_0"),
    ItemAdded("fc_1", "function_call"),
    ItemTruncated("item_2", 1380),
    ResponseCreated("resp_1"),
    OutputItemAdded("resp_1", "item_2"),
    OutputItemAdded("resp_1", "fc_1", "function_call", 1),
    AudioDelta("resp_1", "item_2", PCM),
    AudioDone("resp_1", "item_2"),
    TranscriptDelta("resp_1", "item_2", "It is "),
    TranscriptDone("resp_1", "item_2", "It is noon."),
    FunctionCall("resp_1", "fc_1", "call_1", "time", "{}"),
    ResponseDone("resp_1"),
    ResponseDone("resp_1", "cancelled", "turn_detected"),
    ResponseDone("resp_1", "failed", None, "insufficient_quota", "You exceeded your quota."),
    RateLimitsUpdated((RateLimit("requests", 100, 0, 1.5), RateLimit("tokens", 9000, 8000, 60.0))),
]


@pytest.mark.parametrize("event", CLIENT_EVENTS, ids=lambda e: type(e).__name__)
def test_client_events_round_trip_and_match_the_sdk_schema(event: Any) -> None:
    text = event.to_json()
    CLIENT.validate_python(json.loads(text))
    assert json.loads(text)["type"] == event.TYPE
    assert parse_client_event(text) == event


@pytest.mark.parametrize("event", SERVER_EVENTS, ids=lambda e: type(e).__name__)
def test_server_events_round_trip_and_match_the_sdk_schema(event: ServerEvent) -> None:
    text = event.to_json("event_7")
    assert SERVER.validate_python(json.loads(text)).type == event.TYPE
    assert parse_server_event(text) == event
    assert parse_server_event(text.encode()) == event


def test_literal_append_and_truncate() -> None:
    assert AudioAppend(b"\x00\x01").to_json() == (
        '{"type":"input_audio_buffer.append","audio":"AAE="}'
    )
    assert ItemTruncate("item_9", 60).to_json() == (
        '{"type":"conversation.item.truncate","item_id":"item_9","content_index":0,'
        '"audio_end_ms":60}'
    )


def test_session_config_wire_shape() -> None:
    body = SessionConfig(instructions="Hi", voice="marin", reasoning_effort="low").to_dict()
    assert body == {
        "type": "realtime",
        "instructions": "Hi",
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "turn_detection": {
                    "type": "semantic_vad",
                    "create_response": True,
                    "interrupt_response": True,
                    "eagerness": "auto",
                },
                "transcription": {"model": "gpt-4o-mini-transcribe"},
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
        },
        "reasoning": {"effort": "low"},
    }
    server = TurnDetection("server_vad", threshold=0.7, prefix_padding_ms=200).to_dict()
    assert server == {
        "type": "server_vad",
        "create_response": True,
        "interrupt_response": True,
        "threshold": 0.7,
        "prefix_padding_ms": 200,
        "silence_duration_ms": 500,
    }


def test_session_config_reads_liberally() -> None:
    assert SessionConfig.from_dict("nonsense") == SessionConfig()
    assert SessionConfig.from_dict({}) == SessionConfig(transcription_model=None)
    odd = SessionConfig.from_dict(
        {
            "instructions": 5,
            "audio": {
                "input": {
                    "turn_detection": {"type": "?", "threshold": True, "eagerness": "x"},
                    "format": "pcm",
                },
                "output": {"voice": "", "format": {"rate": 16000}},
            },
            "reasoning": "high",
            "tools": "none",
        }
    )
    assert odd.turn_detection == TurnDetection("server_vad", threshold=0.5)
    assert odd.voice == "marin" and odd.instructions == "" and odd.reasoning_effort is None
    assert (odd.input_rate, odd.output_rate) == (24000, 16000)
    assert odd.tools == ()
    manual = SessionConfig.from_dict({"audio": {"input": {"turn_detection": None}}})
    assert manual.turn_detection is None
    tools = SessionConfig.from_dict({"tools": [{"type": "function"}, "junk"]})
    assert tools.tools == ({"type": "function"},)


def test_items_read_back_liberally() -> None:
    assert item_from_dict("x") is None
    assert item_from_dict({"type": "function_call_output", "call_id": 1}) is None
    assert item_from_dict({"type": "message", "role": "tool"}) is None
    assert item_from_dict({"type": "message", "role": "user", "content": "hi"}) == MessageItem(
        "user", ""
    )
    transcript = {"type": "input_audio", "transcript": "hi there"}
    parts = [{"type": "input_text", "text": "hello"}, transcript, "junk", {"type": "x", "text": 3}]
    assert item_from_dict({"type": "message", "role": "user", "content": parts}) == MessageItem(
        "user", "hello hi there"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "malformed JSON message"),
        ('{"type":"input_audio_buffer.append"}', "without base64 audio"),
        ('{"type":"input_audio_buffer.append","audio":"!!"}', "malformed base64"),
        ('{"type":"conversation.item.create","item":{"type":"nope"}}', "unsupported item"),
        ('{"type":"conversation.item.truncate","item_id":"i"}', "needs item_id"),
        ('{"type":"conversation.item.truncate","audio_end_ms":5}', "needs item_id"),
        ('{"type":"transcription_session.update"}', "unknown realtime client event"),
    ],
)
def test_bad_client_events_are_errors(text: str, message: str) -> None:
    result = parse_client_event(text)
    assert isinstance(result, ProtocolError)
    assert message in result.message


def test_server_events_read_liberally() -> None:
    assert parse_server_event('{"type":"output_audio_buffer.started"}') == Unknown(
        "output_audio_buffer.started"
    )
    assert parse_server_event('{"type":"error"}') == Error(
        "error", "the provider reported an error"
    )
    assert parse_server_event('{"type":"response.done"}') == ResponseDone("")
    assert parse_server_event('{"type":"response.created","response":7}') == ResponseCreated("")
    assert parse_server_event(
        '{"type":"input_audio_buffer.speech_started","audio_start_ms":-5,"item_id":3}'
    ) == SpeechStarted("3", 0)
    failed = parse_server_event(
        '{"type":"conversation.item.input_audio_transcription.failed","item_id":"i"}'
    )
    assert failed == InputTranscriptFailed("i", "transcription failed")
    limits = parse_server_event(
        '{"type":"rate_limits.updated","rate_limits":[{"name":"requests","reset_seconds":true},'
        '"junk",{}]}'
    )
    assert limits == RateLimitsUpdated((RateLimit("requests", 0, 0, 0.0),))
    assert parse_server_event('{"type":"rate_limits.updated"}') == RateLimitsUpdated(())
    assert parse_server_event('{"type":"conversation.item.added"}') == ItemAdded("")
    assert parse_server_event('{"type":"response.output_item.added"}') == OutputItemAdded("", "")
    assert parse_server_event('{"type":"response.function_call_arguments.done"}') == FunctionCall(
        "", "", "", "", ""
    )
    assert ResponseDone("r", "failed").failed and not ResponseDone("r").failed


def test_beta_event_names_read_as_ga() -> None:
    b64 = base64.b64encode(PCM).decode()
    pairs = {
        "response.audio.delta": AudioDelta("r", "i", PCM),
        "response.audio.done": AudioDone("r", "i"),
        "response.audio_transcript.delta": TranscriptDelta("r", "i", "hi"),
        "response.audio_transcript.done": TranscriptDone("r", "i", "hi"),
    }
    for kind, expected in pairs.items():
        body = {"type": kind, "response_id": "r", "item_id": "i", "delta": b64}
        if "transcript" in kind:
            body["delta"] = body["transcript"] = "hi"
        assert parse_server_event(json.dumps(body)) == expected
    created = {"type": "conversation.item.created", "item": {"id": "i", "type": "message"}}
    assert parse_server_event(json.dumps(created)) == ItemAdded("i")


def test_bad_server_events_are_errors_that_do_not_close() -> None:
    bad_audio = parse_server_event('{"type":"response.output_audio.delta","delta":"%%"}')
    assert isinstance(bad_audio, ProtocolError) and not bad_audio.fatal
    huge = '{"type":"x","pad":"' + "a" * MAX_EVENT_BYTES + '"}'
    too_big = parse_server_event(huge)
    assert isinstance(too_big, ProtocolError) and not too_big.fatal
    assert isinstance(parse_server_event("[]"), ProtocolError)


def test_unknown_serializes_its_own_type() -> None:
    assert json.loads(Unknown("x.y").to_json("e")) == {"type": "x.y", "event_id": "e"}
    assert Unknown("x.y").body() == {}


def test_other_item_kinds_carry_only_their_identity() -> None:
    item = ItemAdded("out_1", "function_call_output").body()["item"]
    assert item == {"id": "out_1", "type": "function_call_output", "status": "completed"}
