"""Messages of the browser socket `/voice` (docs/protocols.md §4).

Client -> server: binary PCM16 LE mono 16 kHz, and JSON `finalize`,
`force_response`, `reset`, `interrupt`, `configure` (always refused).
Server -> client: JSON events, camelCase, each a small dataclass whose
`to_json()` is the wire form. `parse_browser_event` reads them back for
clients and tests.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Final

from runtime.protocol.errors import CloseCode, ProtocolError
from runtime.protocol.jsontext import dump, load_object

CONFIGURE_REFUSED: Final = (
    "Runtime configuration is API-owned. Mint a new voice session to change agents."
)
# 16 kHz PCM16 is 32 KiB per second; a client sending more per message than
# this is broken or hostile.
MAX_AUDIO_BYTES: Final = 256 * 1024


# --- client -> server ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finalize:
    """The microphone stopped: finish the utterance now."""


@dataclass(frozen=True, slots=True)
class ForceResponse:
    """Answer what has been heard so far."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Forget the conversation."""


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Stop the current reply (barge-in from a button)."""


@dataclass(frozen=True, slots=True)
class Configure:
    """Refused: configuration belongs to the platform API."""


BrowserMessage = Finalize | ForceResponse | Reset | Interrupt | Configure

_CLIENT_TYPES: Final[dict[str, BrowserMessage]] = {
    "finalize": Finalize(),
    "forceresponse": ForceResponse(),
    "reset": Reset(),
    "interrupt": Interrupt(),
    "configure": Configure(),
}
_CLIENT_WIRE: Final[dict[type, str]] = {
    Finalize: "finalize",
    ForceResponse: "force_response",
    Reset: "reset",
    Interrupt: "interrupt",
    Configure: "configure",
}


def parse_browser_message(text: str | bytes) -> BrowserMessage | ProtocolError:
    """A JSON control message; `force_response`, `forceResponse` are the same."""
    loaded = load_object(text)
    if isinstance(loaded, ProtocolError):
        return loaded
    kind, _obj = loaded
    message = _CLIENT_TYPES.get(kind.replace("_", "").replace("-", ""))
    if message is None:
        return ProtocolError(f"unknown browser message type {kind[:40]!r}")
    return message


def browser_message_json(message: BrowserMessage) -> str:
    """The wire form of a client message (for clients and tests)."""
    return dump({"type": _CLIENT_WIRE[type(message)]})


def check_browser_audio(data: bytes, limit: int = MAX_AUDIO_BYTES) -> bytes | ProtocolError:
    """Validate one binary message of PCM16 samples."""
    if len(data) > limit:
        return ProtocolError(
            f"audio message of {len(data)} bytes exceeds {limit}", CloseCode.MESSAGE_TOO_BIG
        )
    if not data:
        return ProtocolError("empty audio message")
    if len(data) % 2:
        return ProtocolError("PCM16 audio message with an odd number of bytes")
    return bytes(data)


# --- server -> client ---------------------------------------------------------

_CAMEL = re.compile(r"_([a-z0-9])")


def _camel(name: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


class BrowserEvent:
    """Base of the server events: fields become camelCase keys; an optional
    field (one with a default) is omitted when None, a required one is sent as null."""

    __slots__ = ()
    TYPE: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.TYPE}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is not None or f.default is MISSING:
                body[_camel(f.name)] = value
        return body

    def to_json(self) -> str:
        return dump(self.to_dict())


@dataclass(frozen=True, slots=True)
class RuntimeConnected(BrowserEvent):
    TYPE: ClassVar[str] = "runtime_connected"
    session_id: str
    agent_id: str | None
    agent_name: str | None
    transport: str = "websocket"


@dataclass(frozen=True, slots=True)
class RuntimeReady(BrowserEvent):
    TYPE: ClassVar[str] = "runtime_ready"
    sample_rate: int | None = None


@dataclass(frozen=True, slots=True)
class VadEvent(BrowserEvent):
    TYPE: ClassVar[str] = "vad_event"
    event: str  # "SpeechStarted" | "UtteranceEnd"


@dataclass(frozen=True, slots=True)
class SttInterim(BrowserEvent):
    TYPE: ClassVar[str] = "stt_interim"
    text: str


@dataclass(frozen=True, slots=True)
class SttFinal(BrowserEvent):
    TYPE: ClassVar[str] = "stt_final"
    text: str


@dataclass(frozen=True, slots=True)
class UserFinal(BrowserEvent):
    TYPE: ClassVar[str] = "user_final"
    turn_id: str
    text: str


@dataclass(frozen=True, slots=True)
class AssistantStart(BrowserEvent):
    TYPE: ClassVar[str] = "assistant_start"
    turn_id: str | None = None
    transcript: str | None = None


@dataclass(frozen=True, slots=True)
class AssistantDelta(BrowserEvent):
    TYPE: ClassVar[str] = "assistant_delta"
    text: str
    turn_id: str | None = None


@dataclass(frozen=True, slots=True)
class AssistantText(BrowserEvent):
    TYPE: ClassVar[str] = "assistant_text"
    text: str
    turn_id: str | None = None


@dataclass(frozen=True, slots=True)
class AssistantAudio(BrowserEvent):
    TYPE: ClassVar[str] = "assistant_audio"
    turn_id: str
    chunk_index: int
    text: str
    mime_type: str
    audio_base64: str


@dataclass(frozen=True, slots=True)
class AssistantPcmDelta(BrowserEvent):
    TYPE: ClassVar[str] = "assistant_pcm_delta"
    turn_id: str
    chunk_index: int
    sample_rate: int
    pcm_base64: str


@dataclass(frozen=True, slots=True)
class AssistantEnd(BrowserEvent):
    TYPE: ClassVar[str] = "assistant_end"
    turn_id: str
    outcome: str | None = None  # completed | ignored | aborted | interrupted | failed


@dataclass(frozen=True, slots=True)
class Timeline(BrowserEvent):
    """One span of a turn, in the original console's vocabulary (docs/protocols.md §4):
    milliseconds since the end of speech; `elapsed_ms` is when the span ended."""

    TYPE: ClassVar[str] = "timeline"
    turn_id: str
    span_id: str
    stage: str
    label: str
    start_ms: float
    end_ms: float
    elapsed_ms: float
    bytes: int | None = None
    provider: str | None = None  # the provider that served the span's stage


@dataclass(frozen=True, slots=True)
class ResetDone(BrowserEvent):
    TYPE: ClassVar[str] = "reset_done"


@dataclass(frozen=True, slots=True)
class ErrorEvent(BrowserEvent):
    TYPE: ClassVar[str] = "error"
    message: str


EVENT_TYPES: Final[dict[str, type[BrowserEvent]]] = {
    cls.TYPE: cls
    for cls in (
        RuntimeConnected,
        RuntimeReady,
        VadEvent,
        SttInterim,
        SttFinal,
        UserFinal,
        AssistantStart,
        AssistantDelta,
        AssistantText,
        AssistantAudio,
        AssistantPcmDelta,
        AssistantEnd,
        Timeline,
        ResetDone,
        ErrorEvent,
    )
}


def parse_browser_event(text: str | bytes) -> BrowserEvent | ProtocolError:
    """Read a server event back (clients, tests); unknown fields are ignored."""
    loaded = load_object(text)
    if isinstance(loaded, ProtocolError):
        return loaded
    kind, obj = loaded
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        return ProtocolError(f"unknown browser event type {kind!r}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        key = _camel(f.name)
        if key in obj:
            kwargs[f.name] = obj[key]
        elif f.default is MISSING:
            return ProtocolError(f"{kind} event without {key}")
    return cls(**kwargs)
