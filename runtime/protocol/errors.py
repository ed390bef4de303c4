"""The one error value of the protocol package.

Parsers return a `ProtocolError` instead of raising: a malformed frame from one
device is an event in that device's session, never an exception that could
unwind a connection handler (or, worse, a shared loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes (RFC 6455 §7.4.1) the runtime uses."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011


@dataclass(frozen=True)
class ProtocolError:
    """Malformed or unacceptable input.

    `close_code` None means "report it and carry on" (the offending message is
    dropped); otherwise the session must close with that code.
    """

    message: str
    close_code: int | None = None

    @property
    def fatal(self) -> bool:
        return self.close_code is not None
