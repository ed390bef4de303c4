"""The session configuration of an OpenAI Realtime session (GA shape), as values.

`SessionConfig.to_dict()` is the `session` object of `session.update` and of
`POST /v1/realtime/client_secrets`; `SessionConfig.from_dict()` reads one back
liberally (the loopback fake server and the tests use it). Items are the
conversation entries a client may create: messages (memory replay) and
function call outputs (the tools seam).

Audio is PCM16 mono at 24 kHz both ways: the GA API's `audio/pcm` format has no
other rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

PCM_RATE: Final = 24_000
PCM_FORMAT: Final = "audio/pcm"
TURN_DETECTION_TYPES: Final = ("server_vad", "semantic_vad")
EAGERNESS: Final = ("auto", "low", "medium", "high")


def _num(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def _flag(value: object, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class TurnDetection:
    """Provider-side end of turn: `server_vad` (energy + silence) or `semantic_vad`."""

    type: str = "semantic_vad"
    eagerness: str = "auto"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }
        if self.type == "semantic_vad":
            body["eagerness"] = self.eagerness
        else:
            body["threshold"] = self.threshold
            body["prefix_padding_ms"] = self.prefix_padding_ms
            body["silence_duration_ms"] = self.silence_duration_ms
        return body

    @classmethod
    def from_value(cls, value: object) -> TurnDetection | None:
        """None for `null` (manual turns) and for anything that is not an object."""
        if not isinstance(value, Mapping):
            return None
        kind = value.get("type")
        eagerness = value.get("eagerness")
        return cls(
            type=kind if kind in TURN_DETECTION_TYPES else "server_vad",
            eagerness=eagerness if eagerness in EAGERNESS else "auto",
            threshold=_num(value.get("threshold"), 0.5),
            prefix_padding_ms=int(_num(value.get("prefix_padding_ms"), 300)),
            silence_duration_ms=int(_num(value.get("silence_duration_ms"), 500)),
            create_response=_flag(value.get("create_response"), True),
            interrupt_response=_flag(value.get("interrupt_response"), True),
        )


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What a Realtime session is told. `model` is omitted when None: over the
    WebSocket the URL names it; a client secret's session must carry it."""

    instructions: str = ""
    voice: str = "marin"
    model: str | None = None
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)
    transcription_model: str | None = "gpt-4o-mini-transcribe"
    transcription_language: str | None = None
    reasoning_effort: str | None = None
    tools: Sequence[Mapping[str, Any]] = ()
    input_rate: int = PCM_RATE
    output_rate: int = PCM_RATE

    def to_dict(self) -> dict[str, Any]:
        audio_in: dict[str, Any] = {
            "format": {"type": PCM_FORMAT, "rate": self.input_rate},
            "turn_detection": (
                self.turn_detection.to_dict() if self.turn_detection is not None else None
            ),
        }
        if self.transcription_model:
            transcription: dict[str, Any] = {"model": self.transcription_model}
            if self.transcription_language:
                transcription["language"] = self.transcription_language
            audio_in["transcription"] = transcription
        body: dict[str, Any] = {"type": "realtime"}
        if self.model:
            body["model"] = self.model
        body["instructions"] = self.instructions
        body["output_modalities"] = ["audio"]
        body["audio"] = {
            "input": audio_in,
            "output": {
                "format": {"type": PCM_FORMAT, "rate": self.output_rate},
                "voice": self.voice,
            },
        }
        if self.reasoning_effort:
            body["reasoning"] = {"effort": self.reasoning_effort}
        if self.tools:
            body["tools"] = [dict(tool) for tool in self.tools]
            body["tool_choice"] = "auto"
        return body

    @classmethod
    def from_dict(cls, value: object) -> SessionConfig:
        """Liberal reading; absent parts keep their defaults, `turn_detection: null` is manual."""
        if not isinstance(value, Mapping):
            return cls()
        audio = _obj(value.get("audio"))
        audio_in, audio_out = _obj(audio.get("input")), _obj(audio.get("output"))
        turn: TurnDetection | None = TurnDetection()
        if "turn_detection" in audio_in:
            turn = TurnDetection.from_value(audio_in["turn_detection"])
        transcription = _obj(audio_in.get("transcription"))
        tools = value.get("tools")
        return cls(
            instructions=_text(value.get("instructions")) or "",
            voice=_text(audio_out.get("voice")) or "marin",
            model=_text(value.get("model")),
            turn_detection=turn,
            transcription_model=_text(transcription.get("model")),
            transcription_language=_text(transcription.get("language")),
            reasoning_effort=_text(_obj(value.get("reasoning")).get("effort")),
            tools=tuple(t for t in tools if isinstance(t, Mapping))
            if isinstance(tools, list)
            else (),
            input_rate=_rate(audio_in.get("format")),
            output_rate=_rate(audio_out.get("format")),
        )


def _rate(value: object) -> int:
    return int(_num(_obj(value).get("rate"), PCM_RATE))


# --- conversation items ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageItem:
    """A text message in the conversation (memory replay, or a typed user line)."""

    role: Literal["user", "assistant", "system"]
    text: str

    def to_dict(self) -> dict[str, Any]:
        # GA content types: the user and system write input_text, the assistant output_text.
        kind = "output_text" if self.role == "assistant" else "input_text"
        return {
            "type": "message",
            "role": self.role,
            "content": [{"type": kind, "text": self.text}],
        }


@dataclass(frozen=True, slots=True)
class FunctionCallOutput:
    """A tool's answer to a `function_call` item (the tools seam)."""

    call_id: str
    output: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "function_call_output", "call_id": self.call_id, "output": self.output}


ConversationItem = MessageItem | FunctionCallOutput


def item_from_dict(value: object) -> ConversationItem | None:
    """Read an item back (the fake server); None for kinds this runtime never sends."""
    if not isinstance(value, Mapping):
        return None
    if value.get("type") == "function_call_output":
        call_id, output = value.get("call_id"), value.get("output")
        if isinstance(call_id, str) and isinstance(output, str):
            return FunctionCallOutput(call_id, output)
        return None
    role = value.get("role")
    if value.get("type") != "message" or role not in ("user", "assistant", "system"):
        return None
    content = value.get("content")
    texts: list[str] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping):
                text = part.get("text", part.get("transcript"))
                if isinstance(text, str):
                    texts.append(text)
    return MessageItem(role, " ".join(texts))
