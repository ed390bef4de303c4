"""OpenAI Realtime API events (GA names), both directions, as typed values.

Client -> provider: `session.update`, `input_audio_buffer.append/commit/clear`,
`conversation.item.create/truncate`, `response.create/cancel`.
Provider -> client: `error`, `session.created/updated`, `input_audio_buffer.*`,
input transcription, `conversation.item.added/truncated`, `response.created`,
`response.output_item.added`, audio and audio-transcript deltas and their
`done`, function call arguments, `response.done`, `rate_limits.updated`.

Parsing never raises: malformed input is a `ProtocolError`, an event type this
module does not know is `Unknown` (the API adds events; a client must ignore
them). The beta names (`response.audio.delta`, `response.audio_transcript.*`,
`conversation.item.created`) read as their GA equivalents. Audio deltas are
decoded from base64 here, so the session only ever sees PCM16 bytes.

Both directions exist so the loopback fake provider speaks exactly what the
bridge parses, and the tests can check the round trip on literal JSON.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from runtime.protocol.errors import CloseCode, ProtocolError
from runtime.protocol.jsontext import dump, liberal_int, load_object, optional_str
from runtime.protocol.realtime_session import (
    ConversationItem,
    SessionConfig,
    item_from_dict,
)

# Far above a real event (an audio delta carries well under a second of audio,
# ~64 KiB of base64) while bounding what one provider message can cost us.
MAX_EVENT_BYTES: Final = 4 * 1024 * 1024


def _b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode("ascii")


def _pcm(value: object, what: str) -> bytes | ProtocolError:
    if not isinstance(value, str):
        return ProtocolError(f"{what} without base64 audio")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ProtocolError(f"{what} with malformed base64 audio")


def _id(obj: Mapping[str, Any], key: str) -> str:
    return optional_str(obj.get(key)) or ""


def _ms(obj: Mapping[str, Any], key: str) -> int:
    return max(0, liberal_int(obj.get(key), 0))


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --- client -> provider --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionUpdate:
    TYPE: ClassVar[str] = "session.update"
    session: SessionConfig

    def to_json(self) -> str:
        return dump({"type": "session.update", "session": self.session.to_dict()})


@dataclass(frozen=True, slots=True)
class AudioAppend:
    TYPE: ClassVar[str] = "input_audio_buffer.append"
    pcm: bytes  # PCM16 LE mono at the session's input rate

    def to_json(self) -> str:
        # Built by hand: json.dumps would scan kilobytes of base64 that need no escaping.
        return '{"type":"input_audio_buffer.append","audio":"' + _b64(self.pcm) + '"}'


@dataclass(frozen=True, slots=True)
class AudioCommit:
    TYPE: ClassVar[str] = "input_audio_buffer.commit"

    def to_json(self) -> str:
        return '{"type":"input_audio_buffer.commit"}'


@dataclass(frozen=True, slots=True)
class AudioClear:
    TYPE: ClassVar[str] = "input_audio_buffer.clear"

    def to_json(self) -> str:
        return '{"type":"input_audio_buffer.clear"}'


@dataclass(frozen=True, slots=True)
class ItemCreate:
    TYPE: ClassVar[str] = "conversation.item.create"
    item: ConversationItem
    previous_item_id: str | None = None

    def to_json(self) -> str:
        body: dict[str, Any] = {"type": "conversation.item.create", "item": self.item.to_dict()}
        if self.previous_item_id is not None:
            body["previous_item_id"] = self.previous_item_id
        return dump(body)


@dataclass(frozen=True, slots=True)
class ItemTruncate:
    """The assistant item was heard only up to `audio_end_ms`: forget the rest."""

    TYPE: ClassVar[str] = "conversation.item.truncate"
    item_id: str
    audio_end_ms: int
    content_index: int = 0

    def to_json(self) -> str:
        return dump(
            {
                "type": "conversation.item.truncate",
                "item_id": self.item_id,
                "content_index": self.content_index,
                "audio_end_ms": self.audio_end_ms,
            }
        )


@dataclass(frozen=True, slots=True)
class ResponseCreate:
    TYPE: ClassVar[str] = "response.create"

    def to_json(self) -> str:
        return '{"type":"response.create"}'


@dataclass(frozen=True, slots=True)
class ResponseCancel:
    TYPE: ClassVar[str] = "response.cancel"
    response_id: str | None = None

    def to_json(self) -> str:
        body: dict[str, Any] = {"type": "response.cancel"}
        if self.response_id:
            body["response_id"] = self.response_id
        return dump(body)


ClientEvent = (
    SessionUpdate
    | AudioAppend
    | AudioCommit
    | AudioClear
    | ItemCreate
    | ItemTruncate
    | ResponseCreate
    | ResponseCancel
)


def _parse_item_create(obj: Mapping[str, Any]) -> ClientEvent | ProtocolError:
    item = item_from_dict(obj.get("item"))
    if item is None:
        return ProtocolError("conversation.item.create with an unsupported item")
    return ItemCreate(item, optional_str(obj.get("previous_item_id")))


def _parse_truncate(obj: Mapping[str, Any]) -> ClientEvent | ProtocolError:
    item_id = optional_str(obj.get("item_id"))
    end = liberal_int(obj.get("audio_end_ms"), -1)
    if not item_id or end < 0:
        return ProtocolError("conversation.item.truncate needs item_id and audio_end_ms")
    return ItemTruncate(item_id, end, max(0, liberal_int(obj.get("content_index"), 0)))


def _parse_append(obj: Mapping[str, Any]) -> ClientEvent | ProtocolError:
    pcm = _pcm(obj.get("audio"), "input_audio_buffer.append")
    return pcm if isinstance(pcm, ProtocolError) else AudioAppend(pcm)


_CLIENT_PARSERS: Final[dict[str, Callable[[Mapping[str, Any]], ClientEvent | ProtocolError]]] = {
    "session.update": lambda o: SessionUpdate(SessionConfig.from_dict(o.get("session"))),
    "input_audio_buffer.append": _parse_append,
    "input_audio_buffer.commit": lambda _o: AudioCommit(),
    "input_audio_buffer.clear": lambda _o: AudioClear(),
    "conversation.item.create": _parse_item_create,
    "conversation.item.truncate": _parse_truncate,
    "response.create": lambda _o: ResponseCreate(),
    "response.cancel": lambda o: ResponseCancel(optional_str(o.get("response_id")) or None),
}


def parse_client_event(text: str | bytes) -> ClientEvent | ProtocolError:
    """One client event (the fake provider's side)."""
    loaded = load_object(text, MAX_EVENT_BYTES)
    if isinstance(loaded, ProtocolError):
        return loaded
    kind, obj = loaded
    parser = _CLIENT_PARSERS.get(kind)
    if parser is None:
        return ProtocolError(f"unknown realtime client event type {kind!r}")
    return parser(obj)


# --- provider -> client --------------------------------------------------------------


class ServerEvent:
    """Base of the provider's events: `to_json(event_id)` is the wire form."""

    __slots__ = ()
    TYPE: ClassVar[str]

    def body(self) -> dict[str, Any]:  # pragma: no cover - every event defines it
        raise NotImplementedError

    def to_json(self, event_id: str = "event_0") -> str:
        return dump({"type": self.TYPE, "event_id": event_id, **self.body()})


@dataclass(frozen=True, slots=True)
class Error(ServerEvent):
    """`error`: `kind` is the error's type (invalid_request_error, ...)."""

    TYPE: ClassVar[str] = "error"
    kind: str
    message: str
    code: str | None = None
    param: str | None = None

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.kind, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


@dataclass(frozen=True, slots=True)
class SessionCreated(ServerEvent):
    TYPE: ClassVar[str] = "session.created"
    session: SessionConfig

    def body(self) -> dict[str, Any]:
        return {"session": self.session.to_dict()}


@dataclass(frozen=True, slots=True)
class SessionUpdated(ServerEvent):
    TYPE: ClassVar[str] = "session.updated"
    session: SessionConfig

    def body(self) -> dict[str, Any]:
        return {"session": self.session.to_dict()}


@dataclass(frozen=True, slots=True)
class SpeechStarted(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.speech_started"
    item_id: str
    audio_start_ms: int

    def body(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "audio_start_ms": self.audio_start_ms}


@dataclass(frozen=True, slots=True)
class SpeechStopped(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.speech_stopped"
    item_id: str
    audio_end_ms: int

    def body(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "audio_end_ms": self.audio_end_ms}


@dataclass(frozen=True, slots=True)
class BufferCommitted(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.committed"
    item_id: str
    previous_item_id: str | None = None

    def body(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "previous_item_id": self.previous_item_id}


@dataclass(frozen=True, slots=True)
class BufferCleared(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.cleared"

    def body(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True)
class InputTranscriptDelta(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.input_audio_transcription.delta"
    item_id: str
    delta: str

    def body(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "content_index": 0, "delta": self.delta}


@dataclass(frozen=True, slots=True)
class InputTranscript(ServerEvent):
    """`...input_audio_transcription.completed`: what the person said."""

    TYPE: ClassVar[str] = "conversation.item.input_audio_transcription.completed"
    item_id: str
    transcript: str
    seconds: float = 0.0

    def body(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "content_index": 0,
            "transcript": self.transcript,
            "usage": {"type": "duration", "seconds": self.seconds},
        }


@dataclass(frozen=True, slots=True)
class InputTranscriptFailed(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.input_audio_transcription.failed"
    item_id: str
    message: str
    code: str | None = None

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": "transcription_error", "message": self.message}
        if self.code is not None:
            error["code"] = self.code
        return {"item_id": self.item_id, "content_index": 0, "error": error}


def _item_body(item_id: str, item_type: str, status: str) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "type": item_type, "status": status}
    if item_type == "message":
        item["content"] = []
    elif item_type == "function_call":
        item["name"] = item["arguments"] = ""  # filled in by the arguments events
    return item


@dataclass(frozen=True, slots=True)
class ItemAdded(ServerEvent):
    """`conversation.item.added`: an item joined the conversation."""

    TYPE: ClassVar[str] = "conversation.item.added"
    item_id: str
    item_type: str = "message"
    role: str | None = None
    previous_item_id: str | None = None

    def body(self) -> dict[str, Any]:
        item = _item_body(self.item_id, self.item_type, "completed")
        if self.role is not None:
            item["role"] = self.role
        return {"previous_item_id": self.previous_item_id, "item": item}


@dataclass(frozen=True, slots=True)
class ItemTruncated(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.truncated"
    item_id: str
    audio_end_ms: int
    content_index: int = 0

    def body(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "content_index": self.content_index,
            "audio_end_ms": self.audio_end_ms,
        }


@dataclass(frozen=True, slots=True)
class ResponseCreated(ServerEvent):
    TYPE: ClassVar[str] = "response.created"
    response_id: str

    def body(self) -> dict[str, Any]:
        return {"response": {"id": self.response_id, "object": "realtime.response",
                             "status": "in_progress", "output": []}}  # fmt: skip


@dataclass(frozen=True, slots=True)
class OutputItemAdded(ServerEvent):
    TYPE: ClassVar[str] = "response.output_item.added"
    response_id: str
    item_id: str
    item_type: str = "message"
    output_index: int = 0

    def body(self) -> dict[str, Any]:
        item = _item_body(self.item_id, self.item_type, "in_progress")
        if self.item_type == "message":
            item["role"] = "assistant"
        return {"response_id": self.response_id, "output_index": self.output_index, "item": item}


class _Output(ServerEvent):
    """Events about one content part of one output item of a response."""

    __slots__ = ()
    response_id: str
    item_id: str

    def _where(self) -> dict[str, Any]:
        return {"response_id": self.response_id, "item_id": self.item_id,
                "output_index": 0, "content_index": 0}  # fmt: skip


@dataclass(frozen=True, slots=True)
class AudioDelta(_Output):
    TYPE: ClassVar[str] = "response.output_audio.delta"
    response_id: str
    item_id: str
    pcm: bytes

    def body(self) -> dict[str, Any]:
        return {**self._where(), "delta": _b64(self.pcm)}


@dataclass(frozen=True, slots=True)
class AudioDone(_Output):
    TYPE: ClassVar[str] = "response.output_audio.done"
    response_id: str
    item_id: str

    def body(self) -> dict[str, Any]:
        return self._where()


@dataclass(frozen=True, slots=True)
class TranscriptDelta(_Output):
    """`response.output_audio_transcript.delta`: words of the audio being spoken."""

    TYPE: ClassVar[str] = "response.output_audio_transcript.delta"
    response_id: str
    item_id: str
    delta: str

    def body(self) -> dict[str, Any]:
        return {**self._where(), "delta": self.delta}


@dataclass(frozen=True, slots=True)
class TranscriptDone(_Output):
    TYPE: ClassVar[str] = "response.output_audio_transcript.done"
    response_id: str
    item_id: str
    transcript: str

    def body(self) -> dict[str, Any]:
        return {**self._where(), "transcript": self.transcript}


@dataclass(frozen=True, slots=True)
class FunctionCall(ServerEvent):
    """`response.function_call_arguments.done`: the model calls a tool."""

    TYPE: ClassVar[str] = "response.function_call_arguments.done"
    response_id: str
    item_id: str
    call_id: str
    name: str
    arguments: str

    def body(self) -> dict[str, Any]:
        return {"response_id": self.response_id, "item_id": self.item_id, "output_index": 0,
                "call_id": self.call_id, "name": self.name,
                "arguments": self.arguments}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ResponseDone(ServerEvent):
    """`response.done`: status completed | cancelled | failed | incomplete.

    A failed response carries the provider's error (`error_code` such as
    `rate_limit_exceeded` or `insufficient_quota`, and its message)."""

    TYPE: ClassVar[str] = "response.done"
    response_id: str
    status: str = "completed"
    reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def body(self) -> dict[str, Any]:
        details: dict[str, Any] = {"type": self.status}
        if self.reason is not None:
            details["reason"] = self.reason
        if self.error_code is not None or self.error_message is not None:
            details["error"] = {"type": "server_error", "code": self.error_code,
                                "message": self.error_message}  # fmt: skip
        response = {"id": self.response_id, "object": "realtime.response",
                    "status": self.status, "status_details": details}  # fmt: skip
        return {"response": response}


@dataclass(frozen=True, slots=True)
class RateLimit:
    name: str
    limit: int
    remaining: int
    reset_seconds: float


@dataclass(frozen=True, slots=True)
class RateLimitsUpdated(ServerEvent):
    TYPE: ClassVar[str] = "rate_limits.updated"
    limits: tuple[RateLimit, ...]

    def body(self) -> dict[str, Any]:
        return {"rate_limits": [{"name": r.name, "limit": r.limit, "remaining": r.remaining,
                                 "reset_seconds": r.reset_seconds}
                                for r in self.limits]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Unknown(ServerEvent):
    """An event this runtime does not act on (new or WebRTC-only); ignored."""

    TYPE: ClassVar[str] = "unknown"
    type: str

    def to_json(self, event_id: str = "event_0") -> str:
        return dump({"type": self.type, "event_id": event_id})

    def body(self) -> dict[str, Any]:
        return {}


# --- parsing provider events --------------------------------------------------------


def _error(obj: Mapping[str, Any]) -> ServerEvent:
    err = _obj(obj.get("error"))
    return Error(
        kind=optional_str(err.get("type")) or "error",
        message=optional_str(err.get("message")) or "the provider reported an error",
        code=optional_str(err.get("code")),
        param=optional_str(err.get("param")),
    )


def _audio_delta(obj: Mapping[str, Any]) -> ServerEvent | ProtocolError:
    pcm = _pcm(obj.get("delta"), "audio delta")
    if isinstance(pcm, ProtocolError):
        return pcm
    return AudioDelta(_id(obj, "response_id"), _id(obj, "item_id"), pcm)


def _seconds(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _input_transcript(obj: Mapping[str, Any]) -> ServerEvent:
    return InputTranscript(
        _id(obj, "item_id"),
        (optional_str(obj.get("transcript")) or "").strip(),
        _seconds(_obj(obj.get("usage")).get("seconds")),
    )


def _transcription_failed(obj: Mapping[str, Any]) -> ServerEvent:
    err = _obj(obj.get("error"))
    return InputTranscriptFailed(
        _id(obj, "item_id"),
        optional_str(err.get("message")) or "transcription failed",
        optional_str(err.get("code")),
    )


def _item_added(obj: Mapping[str, Any]) -> ServerEvent:
    item = _obj(obj.get("item"))
    return ItemAdded(
        _id(item, "id"),
        optional_str(item.get("type")) or "message",
        optional_str(item.get("role")),
        optional_str(obj.get("previous_item_id")),
    )


def _output_item(obj: Mapping[str, Any]) -> ServerEvent:
    item = _obj(obj.get("item"))
    return OutputItemAdded(
        _id(obj, "response_id"),
        _id(item, "id"),
        optional_str(item.get("type")) or "message",
        _ms(obj, "output_index"),
    )


def _response_done(obj: Mapping[str, Any]) -> ServerEvent:
    response = _obj(obj.get("response"))
    details = _obj(response.get("status_details"))
    error = _obj(details.get("error"))
    return ResponseDone(
        _id(response, "id"),
        optional_str(response.get("status")) or "completed",
        optional_str(details.get("reason")),
        optional_str(error.get("code")),
        optional_str(error.get("message")),
    )


def _rate_limits(obj: Mapping[str, Any]) -> ServerEvent:
    limits = obj.get("rate_limits")
    parsed = []
    for item in limits if isinstance(limits, list) else []:
        entry = _obj(item)
        if entry:
            parsed.append(
                RateLimit(
                    optional_str(entry.get("name")) or "",
                    liberal_int(entry.get("limit"), 0),
                    liberal_int(entry.get("remaining"), 0),
                    _seconds(entry.get("reset_seconds")),
                )
            )
    return RateLimitsUpdated(tuple(parsed))


def _session(cls: type[SessionCreated] | type[SessionUpdated]) -> Callable[..., ServerEvent]:
    return lambda o: cls(SessionConfig.from_dict(o.get("session")))


Parser = Callable[[Mapping[str, Any]], "ServerEvent | ProtocolError"]
_AUDIO_DONE: Parser = lambda o: AudioDone(_id(o, "response_id"), _id(o, "item_id"))  # noqa: E731
_TRANSCRIPT_DELTA: Parser = lambda o: TranscriptDelta(  # noqa: E731
    _id(o, "response_id"), _id(o, "item_id"), optional_str(o.get("delta")) or ""
)
_TRANSCRIPT_DONE: Parser = lambda o: TranscriptDone(  # noqa: E731
    _id(o, "response_id"), _id(o, "item_id"), optional_str(o.get("transcript")) or ""
)

_SERVER_PARSERS: Final[dict[str, Parser]] = {
    "error": _error,
    "session.created": _session(SessionCreated),
    "session.updated": _session(SessionUpdated),
    "input_audio_buffer.speech_started": lambda o: SpeechStarted(
        _id(o, "item_id"), _ms(o, "audio_start_ms")
    ),
    "input_audio_buffer.speech_stopped": lambda o: SpeechStopped(
        _id(o, "item_id"), _ms(o, "audio_end_ms")
    ),
    "input_audio_buffer.committed": lambda o: BufferCommitted(
        _id(o, "item_id"), optional_str(o.get("previous_item_id"))
    ),
    "input_audio_buffer.cleared": lambda _o: BufferCleared(),
    "conversation.item.input_audio_transcription.delta": lambda o: InputTranscriptDelta(
        _id(o, "item_id"), optional_str(o.get("delta")) or ""
    ),
    "conversation.item.input_audio_transcription.completed": _input_transcript,
    "conversation.item.input_audio_transcription.failed": _transcription_failed,
    "conversation.item.added": _item_added,
    "conversation.item.created": _item_added,  # beta name
    "conversation.item.truncated": lambda o: ItemTruncated(
        _id(o, "item_id"), _ms(o, "audio_end_ms"), _ms(o, "content_index")
    ),
    "response.created": lambda o: ResponseCreated(_id(_obj(o.get("response")), "id")),
    "response.output_item.added": _output_item,
    "response.output_audio.delta": _audio_delta,
    "response.audio.delta": _audio_delta,  # beta name
    "response.output_audio.done": _AUDIO_DONE,
    "response.audio.done": _AUDIO_DONE,
    "response.output_audio_transcript.delta": _TRANSCRIPT_DELTA,
    "response.audio_transcript.delta": _TRANSCRIPT_DELTA,
    "response.output_audio_transcript.done": _TRANSCRIPT_DONE,
    "response.audio_transcript.done": _TRANSCRIPT_DONE,
    "response.function_call_arguments.done": lambda o: FunctionCall(
        _id(o, "response_id"),
        _id(o, "item_id"),
        _id(o, "call_id"),
        _id(o, "name"),
        optional_str(o.get("arguments")) or "",
    ),
    "response.done": _response_done,
    "rate_limits.updated": _rate_limits,
}


def parse_server_event(text: str | bytes) -> ServerEvent | ProtocolError:
    """One provider event; a malformed one is an error value, an unknown one `Unknown`."""
    loaded = load_object(text, MAX_EVENT_BYTES)
    if isinstance(loaded, ProtocolError):
        if loaded.close_code == CloseCode.MESSAGE_TOO_BIG:
            return ProtocolError(loaded.message)  # the provider's problem, not a reason to close
        return loaded
    kind, obj = loaded
    parser = _SERVER_PARSERS.get(kind)
    if parser is None:
        return Unknown(kind)
    return parser(obj)
