"""Decoding one JSON text message into an object, as a value or a `ProtocolError`."""

from __future__ import annotations

import json
from typing import Any, Final

from runtime.protocol.errors import CloseCode, ProtocolError
from runtime.protocol.text import MAX_DEPTH, TooDeep, clean_json, clean_text

# The firmware's largest messages (MCP tools/list pages) stay far below this.
MAX_JSON_BYTES: Final = 64 * 1024


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_value(data: str | bytes) -> Any | ProtocolError:
    """Any JSON value, cleaned (`protocol.text`), or why it is not one.

    This is where device and browser JSON enters the runtime (socket messages and
    OTA bodies), so its strings are cleaned here: whatever a field ends up in (a
    record, a log line, a prompt, a call to the API) holds only text that can be
    encoded and stored.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return ProtocolError("JSON message is not valid UTF-8")
    try:
        # NaN and Infinity are not JSON; Python's parser takes them, httpx will not send them.
        value = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return ProtocolError("malformed JSON message")
    try:
        return clean_json(value)
    except TooDeep:
        return ProtocolError(f"JSON message nested deeper than {MAX_DEPTH} levels")


def load_object(
    data: str | bytes, limit: int = MAX_JSON_BYTES
) -> tuple[str, dict[str, Any]] | ProtocolError:
    """Parse a JSON object with a string `type` -> (lower-case type, object)."""
    if len(data) > limit:
        return ProtocolError(
            f"JSON message of {len(data)} bytes exceeds {limit}", CloseCode.MESSAGE_TOO_BIG
        )
    obj = load_value(data)
    if isinstance(obj, ProtocolError):
        return obj
    if not isinstance(obj, dict):
        return ProtocolError("JSON message is not an object")
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind.strip():
        return ProtocolError("JSON message has no type")
    return clean_text(kind.strip().lower(), 64), obj


def dump(obj: dict[str, Any]) -> str:
    """Compact JSON, UTF-8 kept as is (the firmware's cJSON reads UTF-8)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def optional_str(value: object, limit: int | None = None) -> str | None:
    """A string field, liberally: numbers become strings, anything else None;
    cut to `limit` characters when one is given."""
    if isinstance(value, str):
        return value if limit is None else value[:limit]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def liberal_int(value: object, default: int) -> int:
    """An integer field that may arrive as 16000, 16000.0 or "16000"."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) < 10:
            return int(text)
    return default
