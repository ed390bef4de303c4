"""An agent's speech-to-speech configuration, read once per session.

The stored `realtime` block (see `shared.agent_config`) is normalised here and
turned into the provider's session configuration. Instructions get the agent's
name and description appended, as the original OpenDot did; reasoning effort is
sent only to the models that take it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.protocol.realtime_session import SessionConfig, TurnDetection
from shared import agent_config

Agent = Mapping[str, Any]

# Models that accept `reasoning.effort` (the others refuse the field).
_REASONING_MODELS = ("gpt-realtime-2",)


def is_speech_to_speech(agent: Agent | None) -> bool:
    architecture = agent_config.normalize_architecture((agent or {}).get("architecture"))
    return architecture == "speech_to_speech"


@dataclass(frozen=True, slots=True)
class RealtimeConfig:
    provider: str = "openai"
    model: str = "gpt-realtime-2"
    voice: str = "marin"
    instructions: str = agent_config.DEFAULT_REALTIME_INSTRUCTIONS
    reasoning_effort: str = "low"
    turn_detection: TurnDetection = field(default_factory=TurnDetection)
    base_url: str = ""
    api_key_name: str = "OPENAI_API_KEY"
    fallback: str = "none"
    transcription_model: str = "gpt-4o-mini-transcribe"
    language: str = "en-US"  # the agent's speech language (stt stage): transcription, apology

    @property
    def falls_back_to_pipeline(self) -> bool:
        return self.fallback == "pipeline"

    @classmethod
    def from_agent(cls, agent: Agent | None) -> RealtimeConfig:
        block = agent_config.normalize_realtime((agent or {}).get("realtime"))
        turn = block["turnDetection"]
        parts = [block["instructions"]]
        if agent and agent.get("name"):
            parts.append(f"Agent name: {agent['name']}.")
        if agent and agent.get("description"):
            parts.append(f"Agent description: {agent['description']}.")
        language = agent_config.setting_value(agent, "stt", "language") or "en-US"
        return cls(
            provider=block["provider"],
            model=block["model"],
            voice=block["voice"],
            instructions="\n\n".join(parts),
            reasoning_effort=block["reasoningEffort"],
            turn_detection=TurnDetection(
                type=turn["type"],
                eagerness=turn["eagerness"],
                threshold=float(turn["threshold"]),
                prefix_padding_ms=int(turn["prefixPaddingMs"]),
                silence_duration_ms=int(turn["silenceDurationMs"]),
                create_response=bool(turn["createResponse"]),
                interrupt_response=bool(turn["interruptResponse"]),
            ),
            base_url=block["baseUrl"],
            api_key_name=block["apiKeyName"],
            fallback=block["fallback"],
            transcription_model=block["transcriptionModel"],
            language=str(language),
        )

    def session(
        self,
        *,
        manual: bool = False,
        with_model: bool = False,
        tools: Sequence[Mapping[str, Any]] = (),
    ) -> SessionConfig:
        """The provider's session config; `manual` turns provider turn detection off
        (the device's button ends the turn), `with_model` for a client secret."""
        language = self.language.split("-")[0].lower() or None
        return SessionConfig(
            instructions=self.instructions,
            voice=self.voice,
            model=self.model if with_model else None,
            turn_detection=None if manual else self.turn_detection,
            transcription_model=self.transcription_model or None,
            transcription_language=language,
            reasoning_effort=self.reasoning_effort if self.model in _REASONING_MODELS else None,
            tools=tuple(tools),
        )
