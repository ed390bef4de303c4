"""What a session needs from its agent, read once per turn from the agent JSON.

Values come through `shared.agent_config`, which falls back to the current
defaults, so an old or partial agent never breaks a turn. Environment settings
(CLOSE_DEVICE_AFTER_TURN, MIN_TRANSCRIPT_CHARS, ...) apply when there is no
agent at all.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.pipeline.interfaces import SttOptions, TtsOptions, VadOptions
from runtime.pipeline.turn_end import TurnEndConfig
from runtime.protocol.chunks import chunk_style_hint
from runtime.settings import RuntimeSettings
from shared import agent_config

Agent = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TurnConfig:
    agent_id: str | None = None
    agent_name: str | None = None
    vad: VadOptions = field(default_factory=VadOptions)
    stt: SttOptions = field(default_factory=SttOptions)
    tts: TtsOptions = field(default_factory=TtsOptions)
    instructions: str = agent_config.DEFAULT_SYSTEM_PROMPT
    llm_model: str = ""
    llm_settings: Mapping[str, Any] = field(default_factory=dict)
    min_transcript_chars: int = 2
    close_after_turn: bool = True
    close_delay_ms: int = 300
    delivery: str = "chunked_file"
    encoding: str = "mp3"
    barge_in: bool = True
    barge_in_min_ms: int = 500


@functools.cache
def _llm_keys() -> tuple[str, ...]:
    # default_stages() parses JSON for a fresh copy: once per process, not per session.
    return tuple(
        s["key"]
        for stage in agent_config.default_stages()
        if stage["id"] == "llm"
        for s in stage["settings"]
    )


def _llm_settings(agent: Agent | None) -> dict[str, Any]:
    return {key: agent_config.setting_value(agent, "llm", key) for key in _llm_keys()}


def instructions_for(agent: Agent | None) -> str:
    prompt = str(agent_config.setting_value(agent, "llm", "system_prompt") or "").strip()
    parts = [prompt or agent_config.DEFAULT_SYSTEM_PROMPT]
    if agent:
        if agent.get("name"):
            parts.append(f"Agent name: {agent['name']}.")
        if agent.get("description"):
            parts.append(f"Agent description: {agent['description']}.")
    parts.append(chunk_style_hint(str(agent_config.setting_value(agent, "tts", "chunk_style"))))
    return "\n\n".join(parts)


def _semantic(agent: Agent | None, endpointing_ms: int) -> TurnEndConfig | None:
    """The agent's semantic end-of-turn settings; None when it is switched off."""
    if not agent_config.setting_bool(agent, "vad", "semantic_turn"):
        return None
    short = agent_config.setting_int(agent, "vad", "semantic_short_ms") or 100
    long = max(short, agent_config.setting_int(agent, "vad", "semantic_long_ms") or 1500)
    threshold = agent_config.setting_float(agent, "vad", "semantic_threshold")
    return TurnEndConfig(
        short_ms=short,
        long_ms=long,
        threshold=0.9 if threshold is None else threshold,
        # Without a verdict (model overloaded), the agent's own fixed silence applies.
        fallback_ms=min(max(short, endpointing_ms), long),
    )


def turn_config(agent: Agent | None, settings: RuntimeSettings) -> TurnConfig:
    if not agent:
        return TurnConfig(
            vad=VadOptions(semantic=_semantic(None, 300)),
            instructions=instructions_for(None),
            llm_model=agent_config.stage_model(None, "llm"),
            llm_settings=_llm_settings(None),
            min_transcript_chars=settings.min_transcript_chars,
            close_after_turn=settings.close_device_after_turn,
            close_delay_ms=settings.close_device_after_turn_delay_ms,
        )
    endpointing = agent_config.setting_int(agent, "vad", "endpointing")
    utterance_end = agent_config.setting_int(agent, "vad", "utterance_end_ms")
    min_chars = agent_config.setting_int(agent, "vad", "min_transcript_chars")
    delay = agent_config.setting_int(agent, "vad", "close_device_after_turn_delay_ms")
    features = agent_config.setting_value(agent, "stt", "stt_features") or []
    tts_rate = agent_config.setting_int(agent, "tts", "sample_rate") or 24_000
    return TurnConfig(
        agent_id=str(agent["id"]) if agent.get("id") else None,
        agent_name=str(agent["name"]) if agent.get("name") else None,
        vad=VadOptions(
            endpointing_ms=endpointing if endpointing is not None else 300,
            semantic=_semantic(agent, endpointing if endpointing is not None else 300),
        ),
        stt=SttOptions(
            model=agent_config.stage_model(agent, "stt"),
            language=str(agent_config.setting_value(agent, "stt", "language") or "en-US"),
            features=tuple(str(f) for f in features) if isinstance(features, list) else (),
            endpointing_ms=endpointing,
            utterance_end_ms=utterance_end,
        ),
        tts=TtsOptions(model=agent_config.stage_model(agent, "tts"), sample_rate=tts_rate),
        instructions=instructions_for(agent),
        llm_model=agent_config.stage_model(agent, "llm"),
        llm_settings=_llm_settings(agent),
        min_transcript_chars=min_chars if min_chars is not None else settings.min_transcript_chars,
        # The operator's CLOSE_DEVICE_AFTER_TURN=false switches it off for every agent.
        close_after_turn=settings.close_device_after_turn
        and agent_config.setting_bool(agent, "vad", "close_device_after_turn"),
        close_delay_ms=delay if delay is not None else settings.close_device_after_turn_delay_ms,
        delivery=str(agent_config.setting_value(agent, "tts", "delivery") or "chunked_file"),
        encoding=str(agent_config.setting_value(agent, "tts", "encoding") or "mp3"),
        barge_in=agent_config.setting_bool(agent, "vad", "barge_in"),
        barge_in_min_ms=agent_config.setting_int(agent, "vad", "barge_in_min_ms") or 500,
    )
