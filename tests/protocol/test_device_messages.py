"""xiaozhi JSON messages: firmware fixtures in, literal JSON out, both directions."""

from __future__ import annotations

import dataclasses
import json

import pytest

from runtime.protocol.device import (
    Abort,
    Alert,
    AudioParams,
    Hello,
    Listen,
    ListenMode,
    ListenState,
    Llm,
    Mcp,
    McpOut,
    ServerHello,
    Stt,
    System,
    Tts,
    TtsState,
    parse_device_message,
    parse_server_message,
)
from runtime.protocol.errors import CloseCode, ProtocolError
from runtime.protocol.jsontext import MAX_JSON_BYTES
from tests.protocol import firmware_fixtures as fw

SID = "s-1"


def test_firmware_hello() -> None:
    hello = parse_device_message(fw.HELLO_V1)
    assert hello == Hello(
        version=1,
        transport="websocket",
        features={"mcp": True},
        audio_params=AudioParams("opus", 16000, 1, 60),
        session_id=None,
    )
    assert isinstance(hello, Hello)
    assert hello.mcp and not hello.aec


def test_firmware_hello_with_aec_and_glyphs() -> None:
    hello = parse_device_message(fw.HELLO_V3_AEC)
    assert isinstance(hello, Hello)
    assert hello.version == 3 and hello.aec and hello.mcp
    glyphs = parse_device_message(fw.HELLO_GLYPHS.encode())  # v2/v3 JSON frames are bytes
    assert isinstance(glyphs, Hello)
    assert glyphs.version == 2
    assert glyphs.features["glyph_push"] is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (fw.LISTEN_DETECT, Listen(ListenState.DETECT, None, "你好小智", fw.SESSION)),
        (fw.LISTEN_START_AUTO, Listen(ListenState.START, ListenMode.AUTO, None, fw.SESSION)),
        (fw.LISTEN_START_MANUAL, Listen(ListenState.START, ListenMode.MANUAL, None, fw.SESSION)),
        (
            fw.LISTEN_START_REALTIME,
            Listen(ListenState.START, ListenMode.REALTIME, None, fw.SESSION),
        ),
        (fw.LISTEN_STOP, Listen(ListenState.STOP, None, None, fw.SESSION)),
        (fw.ABORT_WAKE, Abort("wake_word_detected", fw.SESSION)),
        (fw.ABORT_PLAIN, Abort(None, fw.SESSION)),
        (fw.LISTEN_START_NO_SESSION, Listen(ListenState.START, ListenMode.AUTO)),
        (fw.LISTEN_STOP_EMPTY_SESSION, Listen(ListenState.STOP)),
    ],
)
def test_firmware_messages(text: str, expected: object) -> None:
    assert parse_device_message(text) == expected


def test_firmware_mcp_results_keep_the_payload() -> None:
    init = parse_device_message(fw.MCP_INITIALIZE_RESULT)
    assert isinstance(init, Mcp)
    assert init.payload["id"] == 1
    assert init.payload["result"]["serverInfo"]["name"] == "bread-compact-wifi"
    tools = parse_device_message(fw.MCP_TOOLS_LIST_RESULT)
    assert isinstance(tools, Mcp)
    assert [t["name"] for t in tools.payload["result"]["tools"]] == [
        "self.get_device_status",
        "self.audio_speaker.set_volume",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # liberal: case, numbers as strings, unknown fields, unknown modes
        (
            '{"type":"LISTEN","state":"Start","mode":"AUTO","extra":1}',
            Listen(ListenState.START, ListenMode.AUTO),
        ),
        ('{"type":"listen","state":"start","mode":"push"}', Listen(ListenState.START)),
        ('{"type":"listen","state":"start","mode":7}', Listen(ListenState.START)),
        ('{"type":"listen","state":"detect","text":42}', Listen(ListenState.DETECT, text="42")),
        (
            '{"type":"listen","state":"stop","session_id":12}',
            Listen(ListenState.STOP, session_id="12"),
        ),
        ('{"type":"listen","state":"stop","session_id":null}', Listen(ListenState.STOP)),
        ('{"type":"abort","reason":""}', Abort()),
        ('{"type":"mcp","payload":null}', Mcp(None)),
        ('{"type":" hello "}', Hello()),
        (
            '{"type":"hello","version":"2","transport":"","features":[1],'
            '"audio_params":{"format":"OPUS","sample_rate":"16000","channels":1.0,'
            '"frame_duration":"sixty"}}',
            Hello(version=2),
        ),
        ('{"type":"hello","audio_params":{"sample_rate":true,"format":""}}', Hello()),
        (
            '{"type":"hello","audio_params":{"frame_duration":20}}',
            Hello(audio_params=AudioParams(frame_duration=20)),
        ),
        ('{"type":"hello","version":5,"audio_params":"opus"}', Hello()),
    ],
)
def test_liberal_parsing(text: str, expected: object) -> None:
    assert parse_device_message(text) == expected


@pytest.mark.parametrize(
    ("text", "close_code", "fragment"),
    [
        ("not json", None, "malformed JSON"),
        ("[1,2]", None, "not an object"),
        ('{"state":"start"}', None, "no type"),
        ('{"type":""}', None, "no type"),
        ('{"type":3}', None, "no type"),
        ('{"type":"iot","states":[]}', None, "unknown device message type 'iot'"),
        ('{"type":"listen"}', None, "unknown listen state None"),
        ('{"type":"listen","state":"pause"}', None, "unknown listen state 'pause'"),
        ('{"type":"mcp"}', None, "without payload"),
        ('{"type":"hello","audio_params":{"format":"pcm"}}', CloseCode.UNSUPPORTED_DATA, "pcm"),
        ("[" * 100_000, CloseCode.MESSAGE_TOO_BIG, "exceeds"),
        ("[" * 50_000, None, "malformed JSON"),  # nesting beyond the recursion limit
        (b"\xff\xfe", None, "UTF-8"),
    ],
)
def test_malformed_device_messages(
    text: str | bytes, close_code: int | None, fragment: str
) -> None:
    result = parse_device_message(text)
    assert isinstance(result, ProtocolError)
    assert result.close_code == close_code
    assert fragment in result.message


def test_json_size_limit_is_exact() -> None:
    pad = MAX_JSON_BYTES - len('{"type":"abort","reason":""}')
    fits = '{"type":"abort","reason":"' + "x" * pad + '"}'
    assert isinstance(parse_device_message(fits), Abort)
    assert isinstance(parse_device_message(fits[:-2] + 'x"}'), ProtocolError)


# --- server -> device: strict, literal JSON ------------------------------------


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (
            ServerHello(),
            '{"type":"hello","session_id":"s-1","transport":"websocket","audio_params":'
            '{"format":"opus","sample_rate":24000,"channels":1,"frame_duration":60}}',
        ),
        (
            ServerHello(version=2),
            '{"type":"hello","session_id":"s-1","version":2,"transport":"websocket",'
            '"audio_params":{"format":"opus","sample_rate":24000,"channels":1,"frame_duration":60}}',
        ),
        (Stt("What time is it?"), '{"type":"stt","session_id":"s-1","text":"What time is it?"}'),
        (Llm(), '{"type":"llm","session_id":"s-1","text":"🙂","emotion":"happy"}'),
        (Llm("Thinking"), '{"type":"llm","session_id":"s-1","text":"🤔","emotion":"thinking"}'),
        (Llm("bogus"), '{"type":"llm","session_id":"s-1","text":"🙂","emotion":"happy"}'),
        (Tts.start(), '{"type":"tts","session_id":"s-1","state":"start"}'),
        (
            Tts.sentence_start("Hello there."),
            '{"type":"tts","session_id":"s-1","state":"sentence_start","text":"Hello there."}',
        ),
        (Tts(TtsState.STOP, "ignored"), '{"type":"tts","session_id":"s-1","state":"stop"}'),
        (Tts.stop(), '{"type":"tts","session_id":"s-1","state":"stop"}'),
        (
            Alert("Error", "Speech recognition failed.", "sad"),
            '{"type":"alert","session_id":"s-1","status":"Error",'
            '"message":"Speech recognition failed.","emotion":"sad"}',
        ),
        (System(), '{"type":"system","session_id":"s-1","command":"reboot"}'),
        (
            McpOut({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            '{"type":"mcp","session_id":"s-1","payload":{"jsonrpc":"2.0","id":1,"method":"tools/list"}}',
        ),
    ],
)
def test_server_messages_on_the_wire(message: object, wire: str) -> None:
    assert message.to_json(SID) == wire  # type: ignore[attr-defined]
    parsed = parse_server_message(wire)
    assert not isinstance(parsed, ProtocolError)
    back, sid = parsed
    assert sid == SID
    assert back.to_json(SID) == wire


def test_outbound_messages_refuse_what_the_firmware_would_ignore() -> None:
    with pytest.raises(ValueError, match="sentence text"):
        Tts(TtsState.SENTENCE_START)
    with pytest.raises(ValueError, match="status, message and emotion"):
        Alert("Error", "")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"type":"hello","session_id":"x"}', "transport"),
        ('{"type":"tts","state":"pause"}', "unknown tts state"),
        ('{"type":"alert","status":"Error","message":"m"}', "alert without"),
        ('{"type":"system"}', "without command"),
        ('{"type":"custom","payload":{}}', "unknown server message type"),
        ("nope", "malformed"),
    ],
)
def test_malformed_server_messages(text: str, fragment: str) -> None:
    result = parse_server_message(text)
    assert isinstance(result, ProtocolError)
    assert fragment in result.message


def test_server_message_parsing_is_liberal() -> None:
    parsed = parse_server_message('{"type":"tts","state":"sentence_start"}')
    assert parsed == (Tts(TtsState.SENTENCE_START, ""), None)
    parsed = parse_server_message('{"type":"llm","emotion":"ecstatic","text":"x"}')
    assert parsed == (Llm("happy", "x"), None)
    parsed = parse_server_message('{"type":"llm","text":"x"}')
    assert parsed == (Llm("happy", "x"), None)


# --- client side (simulator) -> the server parser --------------------------------


@pytest.mark.parametrize(
    "message",
    [
        Hello(version=3, features={"mcp": True}),
        Listen(ListenState.DETECT, text="hey dot"),
        Listen(ListenState.START, ListenMode.MANUAL),
        Listen(ListenState.STOP),
        Abort("wake_word_detected"),
        Mcp({"jsonrpc": "2.0", "id": 1, "result": {}}),
    ],
)
def test_client_messages_round_trip(message: Hello | Listen | Abort | Mcp) -> None:
    wire = message.to_json("sid")
    assert parse_device_message(wire) == dataclasses.replace(message, session_id="sid")


def test_client_messages_match_the_firmware_text() -> None:
    hello = Hello(version=1, features={"mcp": True}).to_json()
    assert json.loads(hello) == json.loads(fw.HELLO_V1)
    assert "session_id" not in json.loads(hello)
    listen = Listen(ListenState.START, ListenMode.AUTO, session_id=fw.SESSION).to_json()
    assert json.loads(listen) == json.loads(fw.LISTEN_START_AUTO)
    assert json.loads(Abort().to_json()) == {"type": "abort", "session_id": ""}
    assert json.loads(Mcp(1, session_id="a").to_json()) == {
        "type": "mcp",
        "session_id": "a",
        "payload": 1,
    }
