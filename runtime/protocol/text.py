"""Text from outside, made safe to keep: the runtime's one string sanitiser.

Devices, browsers and providers send strings that Python holds happily but the
rest of the platform cannot: JSON's `"\\ud800"` escape decodes to a lone
surrogate, which no UTF-8 encoder accepts (httpx raises `UnicodeEncodeError`
when the record that holds it is posted), and `"\\u0000"` is a NUL, which
PostgreSQL refuses in `text` and `jsonb`. One such string in one record used to
stop the record flusher for every tenant. Every string that crosses the
protocol boundary passes through here once, so nothing downstream has to care:

- a lone surrogate becomes U+FFFD (the replacement character), as a lenient
  UTF-8 decoder would have done with the bytes;
- NUL is removed;
- a string longer than a field's limit is cut (fields name their limit);
- a non-finite number (JSON has none; Python's parser accepts `NaN`) becomes
  null, since httpx refuses to encode it.

Values nested deeper than `MAX_DEPTH` are refused by `clean_json` (a JSON
message from a device has no reason to nest more than a few levels; deeper ones
only cost stack).
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

# Lone surrogates only: json.loads already joins a valid high+low escape pair.
_UNSAFE: Final = re.compile("[\ud800-\udfff\x00]")
MAX_DEPTH: Final = 32
# Short device fields (wake word, abort reason, listen mode): the firmware sends
# a few words; anything longer is cut before it reaches a record.
SHORT_TEXT: Final = 256


def _replace(match: re.Match[str]) -> str:
    return "" if match.group() == "\x00" else "\ufffd"


def clean_text(text: str, limit: int | None = None) -> str:
    """`text` without lone surrogates or NULs, at most `limit` characters."""
    if not (text.isascii() and "\x00" not in text):
        text = _UNSAFE.sub(_replace, text)
    if limit is not None and len(text) > limit:
        text = text[:limit]
    return text


class TooDeep(ValueError):
    """A JSON value nested deeper than `MAX_DEPTH`."""


def clean_json(value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """A parsed JSON value with every string (keys included) cleaned; raises `TooDeep`."""
    return _clean(value, max_depth)


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        if depth <= 0:
            raise TooDeep
        return {clean_text(str(k)): _clean(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if depth <= 0:
            raise TooDeep
        return [_clean(v, depth - 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
