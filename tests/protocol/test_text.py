"""The runtime's one string sanitiser, and where device and browser text passes it."""

from __future__ import annotations

import math

import pytest

from runtime.protocol.browser import parse_browser_message
from runtime.protocol.device import Abort, Listen, Mcp, parse_device_message
from runtime.protocol.errors import ProtocolError
from runtime.protocol.text import SHORT_TEXT, TooDeep, clean_json, clean_text


def test_strings_from_devices_are_cleaned_where_they_enter() -> None:
    text = '{"type":"listen","state":"detect","text":"hey \\ud800 dot\\u0000"}'
    listen = parse_device_message(text)
    assert isinstance(listen, Listen) and listen.text == "hey \ufffd dot"
    abort = parse_device_message('{"type":"abort","reason":"' + "x" * 10_000 + '\\udfff"}')
    assert isinstance(abort, Abort) and abort.reason == "x" * SHORT_TEXT
    mcp = parse_device_message('{"type":"mcp","payload":{"k\\ud800":["\\u0000a",{"b":"\\udc00"}]}}')
    assert isinstance(mcp, Mcp) and mcp.payload == {"k\ufffd": ["a", {"b": "\ufffd"}]}
    # A valid surrogate pair is a real character and stays one.
    ok = parse_device_message('{"type":"listen","state":"detect","text":"\\ud83d\\ude00"}')
    assert isinstance(ok, Listen) and ok.text == "\U0001f600"
    for bad in ('{"type":"mcp","payload":NaN}', '{"type":"mcp","payload":-Infinity}'):
        assert isinstance(parse_device_message(bad), ProtocolError)
    deep = '{"type":"mcp","payload":' + "[" * 40 + "]" * 40 + "}"
    error = parse_device_message(deep)
    assert isinstance(error, ProtocolError) and "deeper" in error.message
    unknown = parse_browser_message('{"type":"\\ud800' + "y" * 500 + '"}')
    assert isinstance(unknown, ProtocolError) and len(unknown.message) < 120
    assert "\ud800" not in unknown.message


def test_clean_text_and_json() -> None:
    assert clean_text("plain") == "plain"
    assert clean_text("a\x00b\ud800c", limit=3) == "ab\ufffd"
    assert clean_json({"x": [1.5, math.nan, "\udbff"], "y": None}) == {
        "x": [1.5, None, "\ufffd"],
        "y": None,
    }


def test_clean_json_refuses_deep_objects_too() -> None:
    deep: dict[str, object] = {}
    for _ in range(5):
        deep = {"a": deep}
    with pytest.raises(TooDeep):
        clean_json(deep, max_depth=3)
    assert clean_json(deep, max_depth=6) == deep
