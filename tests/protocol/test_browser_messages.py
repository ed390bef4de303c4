"""Browser `/voice` messages: client control messages and camelCase server events."""

from __future__ import annotations

import json

import pytest

from runtime.protocol.browser import (
    CONFIGURE_REFUSED,
    EVENT_TYPES,
    AssistantAudio,
    AssistantDelta,
    AssistantEnd,
    AssistantPcmDelta,
    AssistantStart,
    AssistantText,
    BrowserEvent,
    BrowserMessage,
    Configure,
    ErrorEvent,
    Finalize,
    ForceResponse,
    Interrupt,
    Reset,
    ResetDone,
    RuntimeConnected,
    RuntimeReady,
    SttFinal,
    SttInterim,
    Timeline,
    UserFinal,
    VadEvent,
    browser_message_json,
    check_browser_audio,
    parse_browser_event,
    parse_browser_message,
)
from runtime.protocol.errors import CloseCode, ProtocolError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type":"finalize"}', Finalize()),
        ('{"type":"force_response"}', ForceResponse()),
        ('{"type":"forceResponse"}', ForceResponse()),
        ('{"type":"force-response","extra":true}', ForceResponse()),
        ('{"type":"reset"}', Reset()),
        ('{"type":"interrupt"}', Interrupt()),
        ('{"type":"configure","agent":{}}', Configure()),
        (b'{"type":"RESET"}', Reset()),
    ],
)
def test_client_messages(text: str | bytes, expected: BrowserMessage) -> None:
    assert parse_browser_message(text) == expected


@pytest.mark.parametrize(
    "message", [Finalize(), ForceResponse(), Reset(), Interrupt(), Configure()]
)
def test_client_messages_round_trip(message: BrowserMessage) -> None:
    assert parse_browser_message(browser_message_json(message)) == message


def test_force_response_wire_form() -> None:
    assert browser_message_json(ForceResponse()) == '{"type":"force_response"}'


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "malformed"),
        ('{"type":"speak"}', "unknown browser message type 'speak'"),
        ("7", "not an object"),
    ],
)
def test_bad_client_messages(text: str, fragment: str) -> None:
    result = parse_browser_message(text)
    assert isinstance(result, ProtocolError)
    assert result.close_code is None
    assert fragment in result.message


def test_configure_refusal_text_is_the_documented_one() -> None:
    assert CONFIGURE_REFUSED.startswith("Runtime configuration is API-owned.")


def test_audio_checks() -> None:
    assert check_browser_audio(b"\x01\x00\x02\x00") == b"\x01\x00\x02\x00"
    assert check_browser_audio(bytearray(4)) == bytes(4)  # type: ignore[arg-type]
    odd = check_browser_audio(b"\x01\x00\x02")
    assert isinstance(odd, ProtocolError) and odd.close_code is None
    empty = check_browser_audio(b"")
    assert isinstance(empty, ProtocolError) and "empty" in empty.message
    big = check_browser_audio(bytes(10), limit=8)
    assert isinstance(big, ProtocolError) and big.close_code == CloseCode.MESSAGE_TOO_BIG


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (
            RuntimeConnected("sess", "agent-1", "Demo agent"),
            '{"type":"runtime_connected","sessionId":"sess","agentId":"agent-1",'
            '"agentName":"Demo agent","transport":"websocket"}',
        ),
        (
            RuntimeConnected("sess", None, None),
            '{"type":"runtime_connected","sessionId":"sess","agentId":null,"agentName":null,'
            '"transport":"websocket"}',
        ),
        (RuntimeReady(), '{"type":"runtime_ready"}'),
        (RuntimeReady(16000), '{"type":"runtime_ready","sampleRate":16000}'),
        (VadEvent("SpeechStarted"), '{"type":"vad_event","event":"SpeechStarted"}'),
        (SttInterim("hel"), '{"type":"stt_interim","text":"hel"}'),
        (SttFinal("hello"), '{"type":"stt_final","text":"hello"}'),
        (UserFinal("t1", "hello"), '{"type":"user_final","turnId":"t1","text":"hello"}'),
        (AssistantStart(), '{"type":"assistant_start"}'),
        (
            AssistantStart("t1", "hello"),
            '{"type":"assistant_start","turnId":"t1","transcript":"hello"}',
        ),
        (AssistantDelta("Hi. "), '{"type":"assistant_delta","text":"Hi. "}'),
        (AssistantText("Hi.", "t1"), '{"type":"assistant_text","text":"Hi.","turnId":"t1"}'),
        (
            AssistantAudio("t1", 0, "Hi.", "audio/mpeg", "SUQz"),
            '{"type":"assistant_audio","turnId":"t1","chunkIndex":0,"text":"Hi.",'
            '"mimeType":"audio/mpeg","audioBase64":"SUQz"}',
        ),
        (
            AssistantPcmDelta("t1", 2, 24000, "AAA="),
            '{"type":"assistant_pcm_delta","turnId":"t1","chunkIndex":2,"sampleRate":24000,"pcmBase64":"AAA="}',
        ),
        (AssistantEnd("t1"), '{"type":"assistant_end","turnId":"t1"}'),
        (
            AssistantEnd("t1", "interrupted"),
            '{"type":"assistant_end","turnId":"t1","outcome":"interrupted"}',
        ),
        (
            Timeline("t1", "stt-final", "stt_final", "STT final", 0, 12.5, 12.5),
            '{"type":"timeline","turnId":"t1","spanId":"stt-final","stage":"stt_final",'
            '"label":"STT final","startMs":0,"endMs":12.5,"elapsedMs":12.5}',
        ),
        (
            Timeline("t1", "tts-chunk-0", "tts_chunk", "TTS chunk 0", 40, 95.5, 95.5, 9600),
            '{"type":"timeline","turnId":"t1","spanId":"tts-chunk-0","stage":"tts_chunk",'
            '"label":"TTS chunk 0","startMs":40,"endMs":95.5,"elapsedMs":95.5,"bytes":9600}',
        ),
        (ResetDone(), '{"type":"reset_done"}'),
        (ErrorEvent("Sorry."), '{"type":"error","message":"Sorry."}'),
    ],
)
def test_server_events_on_the_wire(event: BrowserEvent, wire: str) -> None:
    assert event.to_json() == wire
    assert parse_browser_event(wire) == event


def test_every_event_type_is_listed_once() -> None:
    assert len(EVENT_TYPES) == 15
    assert all(name == cls.TYPE for name, cls in EVENT_TYPES.items())


def test_event_json_keeps_unicode() -> None:
    assert json.loads(AssistantDelta("héllo 🙂").to_json())["text"] == "héllo 🙂"
    assert "🙂" in AssistantDelta("🙂").to_json()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"type":"user_final","text":"x"}', "without turnId"),
        ('{"type":"nope"}', "unknown browser event type"),
        ("[]", "not an object"),
    ],
)
def test_bad_events(text: str, fragment: str) -> None:
    result = parse_browser_event(text)
    assert isinstance(result, ProtocolError)
    assert fragment in result.message
