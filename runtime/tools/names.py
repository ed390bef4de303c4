"""Tool names the model's API accepts, mapped back to the real name exactly.

OpenAI function names must match `^[a-zA-Z0-9_-]{1,64}$`; the firmware names its
tools `self.audio_speaker.set_volume` and MCP servers use anything. Each real
name gets one API name: invalid characters become `_`, a long name keeps its
head and a short hash of the whole, and a collision gets a numbered suffix.
The mapping is per session and keeps the first name given, so a name the model
saw in one step still means the same tool in the next.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

MAX_NAME: Final = 64
_INVALID = re.compile(r"[^A-Za-z0-9_-]")


def api_name(real: str) -> str:
    """The API-safe form of `real` (without collision handling)."""
    safe = _INVALID.sub("_", real.strip()) or "tool"
    if len(safe) <= MAX_NAME:
        return safe
    digest = hashlib.sha256(real.encode()).hexdigest()[:8]
    return f"{safe[: MAX_NAME - 9]}_{digest}"


class NameMap:
    """Two-way map between real tool keys and API names."""

    def __init__(self) -> None:
        self._to_api: dict[str, str] = {}
        self._to_real: dict[str, str] = {}

    def add(self, real: str, label: str | None = None) -> str:
        """The API name for `real` (a unique key), made from `label` (default: `real`)."""
        known = self._to_api.get(real)
        if known is not None:
            return known
        base = api_name(real if label is None else label)
        name, n = base, 1
        while name in self._to_real:
            n += 1
            suffix = f"_{n}"
            name = base[: MAX_NAME - len(suffix)] + suffix
        self._to_api[real] = name
        self._to_real[name] = real
        return name

    def real(self, name: str) -> str | None:
        return self._to_real.get(name)

    def api(self, real: str) -> str | None:
        return self._to_api.get(real)
