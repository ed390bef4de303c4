"""The xiaozhi JSON messages of the device socket, both directions, as typed values.

Device -> server: `hello`, `listen` (detect/start/stop), `abort`, `mcp`.
Server -> device: `hello`, `stt`, `llm`, `tts`, `alert`, `system`, `mcp`.

Parsing is liberal (missing or empty `session_id`, unknown fields, numbers as
strings) and returns a `ProtocolError` instead of raising. Serializing is
strict: every server message carries `session_id`, the hello carries the
`transport` the firmware requires, `alert` all three fields it needs.
Both directions exist so the device simulator and the tests speak exactly
what the runtime parses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from runtime.protocol.emotions import EMOTIONS, emotion_emoji, normalize_emotion
from runtime.protocol.errors import CloseCode, ProtocolError
from runtime.protocol.framing import coerce_version
from runtime.protocol.jsontext import dump, liberal_int, load_object, optional_str
from runtime.protocol.text import SHORT_TEXT

TRANSPORT: Final = "websocket"


class ListenState(StrEnum):
    DETECT = "detect"
    START = "start"
    STOP = "stop"


class ListenMode(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"
    REALTIME = "realtime"


class TtsState(StrEnum):
    START = "start"
    SENTENCE_START = "sentence_start"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class AudioParams:
    format: str = "opus"
    sample_rate: int = 16000
    channels: int = 1
    frame_duration: int = 60

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "frame_duration": self.frame_duration,
        }

    @classmethod
    def from_value(cls, value: object, default: AudioParams) -> AudioParams:
        """Liberal reading: absent or odd fields keep `default`'s values."""
        if not isinstance(value, Mapping):
            return default
        fmt = value.get("format")
        return cls(
            format=fmt.strip().lower() if isinstance(fmt, str) and fmt.strip() else default.format,
            sample_rate=liberal_int(value.get("sample_rate"), default.sample_rate),
            channels=liberal_int(value.get("channels"), default.channels),
            frame_duration=liberal_int(value.get("frame_duration"), default.frame_duration),
        )


UPLINK_AUDIO: Final = AudioParams(sample_rate=16000)
DOWNLINK_AUDIO: Final = AudioParams(sample_rate=24000)


def _message(kind: str, session_id: str | None, **fields: Any) -> str:
    body: dict[str, Any] = {"type": kind}
    if session_id is not None:
        body["session_id"] = session_id
    body.update({k: v for k, v in fields.items() if v is not None})
    return dump(body)


# --- device -> server ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    version: int | None = None
    transport: str = TRANSPORT
    features: Mapping[str, Any] = field(default_factory=dict)
    audio_params: AudioParams = UPLINK_AUDIO
    session_id: str | None = None

    @property
    def mcp(self) -> bool:
        return self.features.get("mcp") is True

    @property
    def aec(self) -> bool:
        return self.features.get("aec") is True

    def to_json(self, session_id: str | None = None) -> str:
        # The firmware's own hello: no session_id yet.
        return _message(
            "hello",
            session_id,
            version=self.version,
            transport=self.transport,
            features=dict(self.features),
            audio_params=self.audio_params.to_dict(),
        )


@dataclass(frozen=True, slots=True)
class Listen:
    state: ListenState
    mode: ListenMode | None = None
    text: str | None = None
    session_id: str | None = None

    def to_json(self, session_id: str | None = None) -> str:
        return _message(
            "listen",
            session_id if session_id is not None else self.session_id or "",
            state=str(self.state),
            mode=str(self.mode) if self.mode is not None else None,
            text=self.text,
        )


@dataclass(frozen=True, slots=True)
class Abort:
    reason: str | None = None
    session_id: str | None = None

    def to_json(self, session_id: str | None = None) -> str:
        sid = session_id if session_id is not None else self.session_id or ""
        return _message("abort", sid, reason=self.reason)


@dataclass(frozen=True, slots=True)
class Mcp:
    payload: Any
    session_id: str | None = None

    def to_json(self, session_id: str | None = None) -> str:
        sid = session_id if session_id is not None else self.session_id or ""
        return _message("mcp", sid, payload=self.payload)


DeviceMessage = Hello | Listen | Abort | Mcp


def _parse_hello(obj: dict[str, Any], sid: str | None) -> Hello | ProtocolError:
    params = AudioParams.from_value(obj.get("audio_params"), UPLINK_AUDIO)
    if params.format != "opus":
        return ProtocolError(
            f"unsupported uplink audio format {params.format!r}", CloseCode.UNSUPPORTED_DATA
        )
    features = obj.get("features")
    transport = obj.get("transport")
    return Hello(
        version=coerce_version(obj.get("version")),
        transport=transport if isinstance(transport, str) and transport else TRANSPORT,
        features=dict(features) if isinstance(features, dict) else {},
        audio_params=params,
        session_id=sid,
    )


def _parse_listen(obj: dict[str, Any], sid: str | None) -> Listen | ProtocolError:
    state = optional_str(obj.get("state"), SHORT_TEXT)
    try:
        parsed = ListenState((state or "").strip().lower())
    except ValueError:
        return ProtocolError(f"unknown listen state {state!r}")
    mode_text = optional_str(obj.get("mode"), SHORT_TEXT)
    try:
        mode: ListenMode | None = ListenMode((mode_text or "").strip().lower())
    except ValueError:
        mode = None  # absent or unknown: the runtime uses its default (auto)
    return Listen(parsed, mode, optional_str(obj.get("text"), SHORT_TEXT), sid)


def parse_device_message(text: str | bytes) -> DeviceMessage | ProtocolError:
    """One JSON message from a device (a text frame, or a v2/v3 JSON payload).

    Strings are already clean (`load_object`); the short fields are also cut to
    `SHORT_TEXT`, so a wake word or an abort reason cannot fill a record."""
    loaded = load_object(text)
    if isinstance(loaded, ProtocolError):
        return loaded
    kind, obj = loaded
    sid = optional_str(obj.get("session_id"), SHORT_TEXT) or None
    if kind == "hello":
        return _parse_hello(obj, sid)
    if kind == "listen":
        return _parse_listen(obj, sid)
    if kind == "abort":
        return Abort(optional_str(obj.get("reason"), SHORT_TEXT) or None, sid)
    if kind == "mcp":
        if "payload" not in obj:
            return ProtocolError("mcp message without payload")
        return Mcp(obj["payload"], sid)
    return ProtocolError(f"unknown device message type {kind[:40]!r}")


# --- server -> device ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerHello:
    audio_params: AudioParams = DOWNLINK_AUDIO
    transport: str = TRANSPORT
    version: int | None = None

    def to_json(self, session_id: str) -> str:
        return _message(
            "hello",
            session_id,
            version=self.version,
            transport=self.transport,
            audio_params=self.audio_params.to_dict(),
        )


@dataclass(frozen=True, slots=True)
class Stt:
    text: str

    def to_json(self, session_id: str) -> str:
        return _message("stt", session_id, text=self.text)


@dataclass(frozen=True, slots=True)
class Llm:
    """The face to show; `text` is its emoji (the firmware reads only `emotion`)."""

    emotion: str = "happy"
    text: str | None = None

    def to_json(self, session_id: str) -> str:
        emotion = normalize_emotion(self.emotion)
        text = self.text or emotion_emoji(emotion)
        return _message("llm", session_id, text=text, emotion=emotion)


@dataclass(frozen=True, slots=True)
class Tts:
    state: TtsState
    text: str | None = None

    def __post_init__(self) -> None:
        if self.state == TtsState.SENTENCE_START and self.text is None:
            raise ValueError("tts sentence_start needs the sentence text")

    @classmethod
    def start(cls) -> Tts:
        return cls(TtsState.START)

    @classmethod
    def sentence_start(cls, text: str) -> Tts:
        return cls(TtsState.SENTENCE_START, text)

    @classmethod
    def stop(cls) -> Tts:
        return cls(TtsState.STOP)

    def to_json(self, session_id: str) -> str:
        text = self.text if self.state == TtsState.SENTENCE_START else None
        return _message("tts", session_id, state=str(self.state), text=text)


@dataclass(frozen=True, slots=True)
class Alert:
    """The firmware ignores an alert that lacks any of the three fields."""

    status: str
    message: str
    emotion: str = "sad"

    def __post_init__(self) -> None:
        if not self.status or not self.message or not self.emotion:
            raise ValueError("alert needs status, message and emotion")

    def to_json(self, session_id: str) -> str:
        return _message(
            "alert", session_id, status=self.status, message=self.message, emotion=self.emotion
        )


@dataclass(frozen=True, slots=True)
class System:
    command: str = "reboot"

    def to_json(self, session_id: str) -> str:
        return _message("system", session_id, command=self.command)


@dataclass(frozen=True, slots=True)
class McpOut:
    payload: Any

    def to_json(self, session_id: str) -> str:
        return _message("mcp", session_id, payload=self.payload)


ServerMessage = ServerHello | Stt | Llm | Tts | Alert | System | McpOut


def _parse_tts(obj: dict[str, Any]) -> Tts | ProtocolError:
    state = optional_str(obj.get("state"))
    try:
        parsed = TtsState((state or "").strip().lower())
    except ValueError:
        return ProtocolError(f"unknown tts state {state!r}")
    text = optional_str(obj.get("text"))
    if parsed == TtsState.SENTENCE_START:
        return Tts(parsed, text or "")
    return Tts(parsed, text)


def _parse_server_hello(obj: dict[str, Any]) -> ServerHello | ProtocolError:
    # The firmware ignores a hello without transport "websocket"; so do we.
    if obj.get("transport") != TRANSPORT:
        return ProtocolError("server hello without transport 'websocket'")
    return ServerHello(
        audio_params=AudioParams.from_value(obj.get("audio_params"), DOWNLINK_AUDIO),
        version=coerce_version(obj.get("version")),
    )


def parse_server_message(text: str | bytes) -> tuple[ServerMessage, str | None] | ProtocolError:
    """One JSON message from the runtime -> (message, its session_id)."""
    loaded = load_object(text)
    if isinstance(loaded, ProtocolError):
        return loaded
    kind, obj = loaded
    sid = optional_str(obj.get("session_id")) or None
    message: ServerMessage | ProtocolError
    if kind == "hello":
        message = _parse_server_hello(obj)
    elif kind == "stt":
        message = Stt(optional_str(obj.get("text")) or "")
    elif kind == "llm":
        emotion = optional_str(obj.get("emotion"))
        known = emotion if emotion is not None and emotion in EMOTIONS else "happy"
        message = Llm(known, optional_str(obj.get("text")))
    elif kind == "tts":
        message = _parse_tts(obj)
    elif kind == "alert":
        fields = [optional_str(obj.get(k)) for k in ("status", "message", "emotion")]
        if not all(fields):
            return ProtocolError("alert without status, message and emotion")
        message = Alert(*(f or "" for f in fields))
    elif kind == "system":
        command = optional_str(obj.get("command"))
        if not command:
            return ProtocolError("system message without command")
        message = System(command)
    elif kind == "mcp":
        message = McpOut(obj.get("payload"))
    else:
        return ProtocolError(f"unknown server message type {kind!r}")
    if isinstance(message, ProtocolError):
        return message
    return message, sid
