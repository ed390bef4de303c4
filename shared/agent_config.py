"""The one definition of an agent's configuration: four stages plus the realtime block.

The public agent JSON (docs/protocols.md §6) carries each stage as a UI
descriptor: label, provider, model, options and a list of settings with their
control type. Only the *values* are the user's; everything else comes from the
defaults defined here. `normalize_pipeline` therefore re-projects whatever was
stored (a full descriptor list, or the compact `{id, provider, model, settings:
{key: value}}` form the API writes) onto the current descriptors, keeping known
values and upgrading the original OpenDot's legacy defaults.

The runtime reads values through `setting_value` and its typed siblings, which
fall back to the default when an agent, stage or key is missing, so a partial or
old config never breaks a turn.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from shared.tools_config import normalize_tools

STAGE_IDS: Final = ("vad", "stt", "llm", "tts")
ARCHITECTURES: Final = ("sandwich", "speech_to_speech")

BASE_SYSTEM_PROMPT: Final = (
    "You are a concise voice assistant. Start with the direct answer and reply in one or "
    "two short spoken sentences unless asked for detail."
)
CHUNK_RULES: Final = (
    "Speech output rules:\n"
    "- Answer only with short spoken phrases wrapped in <chunk></chunk> tags.\n"
    "- Put each natural phrase or sentence in its own <chunk>.\n"
    "- Write nothing outside the tags.\n"
    "- Use plain spoken words: no markdown, lists, emoji, URLs or code.\n"
    "- Say numbers, units and abbreviations the way a person would read them aloud."
)
DEFAULT_SYSTEM_PROMPT: Final = f"{BASE_SYSTEM_PROMPT}\n\n{CHUNK_RULES}"
DEFAULT_REALTIME_INSTRUCTIONS: Final = (
    "You are a concise voice assistant for OpenDot. Start with the direct answer and keep "
    "replies to one or two short spoken sentences unless asked for detail."
)
# Prompts earlier versions stored as their default; they upgrade to the current one.
_LEGACY_PROMPTS: Final = frozenset(
    {
        BASE_SYSTEM_PROMPT,
        "You are a concise voice assistant.",
        "You are a helpful voice assistant. Keep answers short.",
    }
)

PROVIDER_OPTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "vad": ("silero", "deepgram", "azure"),
    "stt": ("deepgram", "openai", "azure", "local"),
    "llm": ("openai", "echo"),
    "tts": ("deepgram", "openai", "azure", "local"),
}


class AgentConfigError(ValueError):
    """A stage configuration that cannot be saved; the message names the setting."""


def _opts(*values: str) -> list[dict[str, str]]:
    return [{"label": v, "value": v} for v in values]


def _setting(key: str, label: str, value: Any, control: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "label": label, "value": value, "control": control, **extra}


def _endpoint_settings(example: str) -> list[dict[str, Any]]:
    """`api_key_name` and `base_url` of a cloud speech stage, as the LLM stage has them.

    They apply to the stage's own provider (its fallbacks use their defaults) and
    follow the LLM's rules: the name is a stored secret or a key the operator
    offers (an operator key goes only to its origin); the URL must be public
    unless the operator allows private addresses. Empty means the provider's own:
    the operator's key and address for it.
    """
    return [
        _setting("api_key_name", "API key name", "", "text", placeholder="the provider's key"),
        _setting("base_url", "Base URL", "", "text", placeholder=example),
    ]


def _fallbacks(stage: str) -> dict[str, Any]:
    return _setting(
        "fallback_providers",
        "Fallback providers",
        [],
        "multi-select",
        options=_opts(*PROVIDER_OPTIONS[stage]),
    )


_STAGES: Final[tuple[dict[str, Any], ...]] = (
    {
        "id": "vad",
        "label": "Voice activity",
        "provider": "silero",
        "model": "endpointing-vad",
        "modelOptions": ["endpointing-vad", "utterance-end"],
        "allowCustomModel": False,
        "purpose": "Detects when the user starts and stops speaking.",
        "latencyTargetMs": 300,
        "emits": ["SpeechStarted", "UtteranceEnd", "speech_final"],
        "settings": [
            _setting(
                "endpointing",
                "Endpointing",
                "300",
                "select",
                unit="ms",
                options=_opts("100", "300", "500", "750", "900", "false"),
            ),
            _setting(
                "utterance_end_ms",
                "Utterance end",
                "1000",
                "select",
                unit="ms",
                options=_opts("500", "1000", "1500", "2000"),
            ),
            _setting(
                "features",
                "Turn events",
                ["vad_events", "interim_results", "speech_final"],
                "multi-select",
                options=_opts("vad_events", "interim_results", "speech_final"),
            ),
            _setting(
                "min_transcript_chars",
                "Noise floor",
                "2",
                "select",
                unit="chars",
                options=_opts("1", "2", "4", "8"),
            ),
            # Semantic end of turn (Smart Turn v3.2 judges each pause); defaults from
            # `opendot bench turns` (BENCHMARKS.md "Turn taking").
            _setting("semantic_turn", "Semantic end of turn", True, "switch"),
            _setting(
                "semantic_short_ms",
                "Pause before judging",
                "100",
                "select",
                unit="ms",
                options=_opts("100", "200", "300", "500"),
            ),
            _setting(
                "semantic_long_ms",
                "Longest pause",
                "1500",
                "select",
                unit="ms",
                options=_opts("1000", "1500", "2000", "3000"),
            ),
            _setting(
                "semantic_threshold",
                "Finished-turn threshold",
                0.9,
                "number",
                min=0.05,
                max=0.95,
                step=0.05,
            ),
            # Barge-in: the person interrupts a reply by speaking (browsers, and Dots
            # that announce echo cancellation); a cough or "mm-hmm" does not.
            _setting("barge_in", "Barge-in", True, "switch"),
            _setting(
                "barge_in_min_ms",
                "Barge-in after",
                "500",
                "select",
                unit="ms",
                options=_opts("300", "500", "700", "1000"),
            ),
            _setting("close_device_after_turn", "Return device to wake word", True, "switch"),
            _setting(
                "close_device_after_turn_delay_ms",
                "Return delay",
                "300",
                "select",
                unit="ms",
                options=_opts("150", "300", "600", "1000"),
            ),
        ],
    },
    {
        "id": "stt",
        "label": "Speech to text",
        "provider": "deepgram",
        "model": "nova-3",
        "modelOptions": [
            "nova-3",
            "nova-3-general",
            "nova-2",
            "nova-2-general",
            "nova-2-conversationalai",
            "nova-2-phonecall",
        ],
        "allowCustomModel": True,
        "purpose": "Turns the user's speech into text while they talk.",
        "latencyTargetMs": 650,
        "emits": ["stt_interim", "stt_final"],
        "settings": [
            _setting(
                "language",
                "Language",
                "en-US",
                "select",
                options=_opts(
                    "en-US", "en", "multi", "es", "fr", "de", "it", "pt-BR", "ja", "ko", "zh"
                ),
            ),
            _setting(
                "encoding",
                "Encoding",
                "linear16",
                "select",
                options=_opts("linear16", "mulaw", "alaw", "opus", "ogg-opus", "flac"),
            ),
            _setting(
                "sample_rate",
                "Sample rate",
                "16000",
                "select",
                unit="Hz",
                options=_opts("8000", "16000", "24000", "48000"),
            ),
            _setting(
                "stt_features",
                "Transcript features",
                ["smart_format"],
                "multi-select",
                options=_opts("smart_format", "punctuate", "numerals"),
            ),
            *_endpoint_settings("https://api.deepgram.com"),
            _fallbacks("stt"),
        ],
    },
    {
        "id": "llm",
        "label": "Language model",
        "provider": "openai",
        "model": "gpt-5-mini",
        "modelOptions": [
            "gpt-5.1",
            "gpt-5.1-chat-latest",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5-nano",
            "gpt-5-pro",
            "gpt-4.1",
            "gpt-4.1-mini",
            "gpt-4.1-nano",
        ],
        "allowCustomModel": True,
        "purpose": "Writes the spoken answer, streamed in short chunks.",
        "latencyTargetMs": 1200,
        "emits": ["llm_delta", "llm_done"],
        "settings": [
            _setting("system_prompt", "System prompt", DEFAULT_SYSTEM_PROMPT, "textarea"),
            _setting(
                "api", "API", "responses", "select", options=_opts("responses", "chat_completions")
            ),
            _setting(
                "api_key_name",
                "API key name",
                "OPENAI_API_KEY",
                "text",
                placeholder="OPENAI_API_KEY",
            ),
            _setting("base_url", "Base URL", "", "text", placeholder="https://api.openai.com/v1"),
            _setting("temperature", "Temperature", 1, "number", min=0, max=2, step=0.1),
            _setting("max_output_tokens", "Max output tokens", "512", "text"),
            _setting(
                "reasoning_effort",
                "Reasoning effort",
                "low",
                "select",
                options=_opts("default", "none", "low", "medium", "high", "xhigh"),
            ),
            _setting(
                "verbosity",
                "Verbosity",
                "low",
                "select",
                options=_opts("default", "low", "medium", "high"),
            ),
            _setting(
                "response_features",
                "Response features",
                ["stream"],
                "multi-select",
                options=_opts("stream"),
            ),
            _setting("stop_sequences", "Stop sequences", [], "multi-text", maxItems=4),
            _setting("seed", "Seed", "", "text"),
            _setting("json_mode", "JSON mode", False, "switch"),
            _setting("extra_headers", "Extra headers", {}, "key-value-list"),
            _setting("timeout_s", "Timeout", 70, "number", unit="s", min=1, max=600, step=1),
            _setting("max_retries", "Max retries", 2, "number", min=0, max=10, step=1),
            _setting(
                "requests_per_second",
                "Requests per second",
                50,
                "number",
                min=0.1,
                max=1000,
                step=0.1,
            ),
            _setting("extra_parameters", "Extra parameters", "{}", "textarea"),
            _fallbacks("llm"),
        ],
    },
    {
        "id": "tts",
        "label": "Text to speech",
        "provider": "deepgram",
        "model": "aura-2-thalia-en",
        "modelOptions": [
            "aura-2-thalia-en",
            "aura-2-asteria-en",
            "aura-2-luna-en",
            "aura-2-athena-en",
            "aura-2-hera-en",
            "aura-2-orion-en",
            "aura-2-arcas-en",
            "aura-2-perseus-en",
        ],
        "allowCustomModel": True,
        "purpose": "Speaks each chunk as soon as it is written.",
        "latencyTargetMs": 900,
        "emits": ["tts_started", "tts_done"],
        "settings": [
            _setting(
                "encoding",
                "Encoding",
                "mp3",
                "select",
                options=_opts("mp3", "linear16", "opus", "flac", "aac"),
            ),
            _setting(
                "sample_rate",
                "Sample rate",
                "24000",
                "select",
                unit="Hz",
                options=_opts("8000", "16000", "24000", "48000"),
            ),
            _setting(
                "delivery",
                "Browser delivery",
                "chunked_file",
                "select",
                options=_opts("chunked_file", "pcm_stream"),
            ),
            _setting(
                "chunk_style",
                "Chunk style",
                "fast",
                "select",
                options=_opts("fast", "balanced", "relaxed"),
            ),
            *_endpoint_settings("https://api.deepgram.com"),
            _fallbacks("tts"),
        ],
    },
)

_REALTIME: Final[dict[str, Any]] = {
    "provider": "openai",
    # Same meaning as a pipeline stage's base_url / api_key_name: "" is the
    # provider's own URL (the operator's OPENAI_BASE_URL for openai; azure needs
    # its resource URL, https://<resource>.openai.azure.com/openai/v1).
    "baseUrl": "",
    "apiKeyName": "OPENAI_API_KEY",
    # "pipeline": after the provider fails, the next turns run on the agent's stages.
    "fallback": "none",
    "transcriptionModel": "gpt-4o-mini-transcribe",
    "model": "gpt-realtime-2",
    "voice": "marin",
    "instructions": DEFAULT_REALTIME_INSTRUCTIONS,
    "reasoningEffort": "low",
    "turnDetection": {
        "type": "semantic_vad",
        "eagerness": "auto",
        "threshold": 0.5,
        "prefixPaddingMs": 300,
        "silenceDurationMs": 500,
        "createResponse": True,
        "interruptResponse": True,
    },
}
REALTIME_CHOICES: Final[Mapping[str, tuple[str, ...]]] = {
    # echo: the labelled offline stand-in (local Whisper, an echo, Piper), as for the LLM.
    "provider": ("openai", "azure", "echo"),
    "fallback": ("none", "pipeline"),
    # Suggestions: any model (an Azure deployment, a compatible server's name) is allowed.
    "model": ("gpt-realtime-2", "gpt-realtime-mini"),
    "voice": (
        "marin",
        "cedar",
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "sage",
        "shimmer",
        "verse",
    ),
    "reasoningEffort": ("low", "medium", "high"),
    "type": ("semantic_vad", "server_vad"),
    "eagerness": ("auto", "low", "medium", "high"),
}
_TURN_RANGES: Final = {
    "threshold": (0.0, 1.0),
    "prefixPaddingMs": (0, 2000),
    "silenceDurationMs": (100, 4000),
}

# Each descriptor lists the providers its stage may name, so a client can offer them.
for _stage_descriptor in _STAGES:
    _stage_descriptor["providerOptions"] = list(PROVIDER_OPTIONS[_stage_descriptor["id"]])

_STAGE_BY_ID: Final = {stage["id"]: stage for stage in _STAGES}
_SETTING_BY_KEY: Final = {
    stage["id"]: {s["key"]: s for s in stage["settings"]} for stage in _STAGES
}


# Copies are made by parsing a JSON snapshot: the descriptors are plain JSON
# data, and json.loads is several times faster than copy.deepcopy here (this
# runs for every agent of every platform-state request).
_STAGES_JSON: Final = json.dumps(list(_STAGES))


def default_stages() -> list[dict[str, Any]]:
    """A fresh deep copy of the four default stage descriptors."""
    stages: list[dict[str, Any]] = json.loads(_STAGES_JSON)
    return stages


def default_realtime() -> dict[str, Any]:
    return copy.deepcopy(_REALTIME)


def default_setting(stage_id: str, key: str) -> Any:
    """The current default value of a setting; KeyError when no such setting exists."""
    return copy.deepcopy(_SETTING_BY_KEY[stage_id][key]["value"])


def latency_budget_ms(stages: Sequence[Mapping[str, Any]] | None = None) -> int:
    items = _STAGES if stages is None else stages
    return sum(int(s.get("latencyTargetMs") or 0) for s in items)


# --- normalisation ---------------------------------------------------------------------------

_LEGACY_FEATURE_KEYS: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "vad": ("features", ("vad_events", "interim_results", "speech_final")),
    "stt": ("stt_features", ("smart_format", "punctuate", "numerals")),
    "llm": ("response_features", ("stream",)),
}
_LEGACY_API_NAMES: Final = {"chat": "chat_completions", "chat-completions": "chat_completions"}


def _as_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str):
        return value
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
        return False
    if isinstance(value, int):
        return bool(value)
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _coerce(descriptor: Mapping[str, Any], raw: Any) -> Any:
    """`raw` made valid for the descriptor's control, or the default when it cannot be."""
    default = descriptor["value"]
    control = descriptor["control"]
    if raw is None:
        return copy.deepcopy(default)
    allowed = [o["value"] for o in descriptor.get("options", ())]
    if control == "select":
        text = _as_text(raw)
        return text if text is not None and text in allowed else default
    if control == "multi-select":
        if not isinstance(raw, (list, tuple)):
            return list(default)
        picked = [v for v in (_as_text(x) for x in raw) if v in allowed]
        return list(dict.fromkeys(picked))
    if control == "multi-text":
        if not isinstance(raw, (list, tuple)):
            return list(default)
        texts = [t.strip() for t in (_as_text(x) for x in raw) if t and t.strip()]
        return texts[: int(descriptor.get("maxItems", len(texts)))]
    if control == "switch":
        flag = _as_bool(raw)
        return default if flag is None else flag
    if control == "number":
        number = _as_number(raw)
        if number is None:
            return default
        number = min(max(number, descriptor.get("min", number)), descriptor.get("max", number))
        return int(number) if float(number).is_integer() else number
    if control == "key-value-list":
        pairs: dict[str, str] = {}
        if isinstance(raw, Mapping):
            items = list(raw.items())
        elif isinstance(raw, list):
            items = [(p.get("key"), p.get("value")) for p in raw if isinstance(p, Mapping)]
        else:
            return copy.deepcopy(default)
        for k, v in items:
            key, val = _as_text(k), _as_text(v)
            if key and key.strip() and val is not None:
                pairs[key.strip()] = val
        return pairs
    if isinstance(raw, (Mapping, list)) and descriptor["key"] == "extra_parameters":
        return json.dumps(raw)
    text = _as_text(raw)
    return default if text is None else text


def _stored_values(stage: Mapping[str, Any]) -> dict[str, Any]:
    settings = stage.get("settings")
    if isinstance(settings, Mapping):
        return dict(settings)
    values: dict[str, Any] = {}
    if isinstance(settings, list):
        for item in settings:
            if isinstance(item, Mapping) and isinstance(item.get("key"), str):
                values[item["key"]] = item.get("value")
    return values


def _upgrade_legacy(stage_id: str, values: dict[str, Any]) -> None:
    """The original OpenDot's normalisation of values saved under older defaults."""
    feature = _LEGACY_FEATURE_KEYS.get(stage_id)
    if feature and feature[0] not in values:
        array_key, flags = feature
        present = [f for f in flags if f in values]
        if present:
            values[array_key] = [f for f in flags if _as_bool(values.get(f))]
    if stage_id == "vad" and _as_text(values.get("endpointing")) == "900":
        values["endpointing"] = "300"
    if stage_id != "llm":
        return
    if _as_text(values.get("max_output_tokens")) in {"", "160"}:
        values["max_output_tokens"] = "512"
    for key in ("reasoning_effort", "verbosity"):
        if values.get(key) == "default":
            values[key] = "low"
    api = values.get("api")
    if isinstance(api, str) and api in _LEGACY_API_NAMES:
        values["api"] = _LEGACY_API_NAMES[api]
    prompt = values.get("system_prompt")
    if isinstance(prompt, str):
        stripped = prompt.strip()
        if not stripped or stripped in _LEGACY_PROMPTS:
            values["system_prompt"] = DEFAULT_SYSTEM_PROMPT
        elif "<chunk" not in stripped.lower():
            values["system_prompt"] = f"{stripped}\n\n{CHUNK_RULES}"


def _stored_stages(stored: Any, *, strict: bool = False) -> dict[str, Mapping[str, Any]]:
    if isinstance(stored, Mapping) and "stages" in stored:
        stored = stored["stages"]
    if isinstance(stored, Mapping):
        stages = {k: v for k, v in stored.items() if isinstance(v, Mapping)}
        if strict:
            for stage_id in stored:
                _known_stage(stage_id)
        return stages
    found: dict[str, Mapping[str, Any]] = {}
    if isinstance(stored, list):
        for stage in stored:
            if strict:
                if not isinstance(stage, Mapping):
                    raise AgentConfigError("Each pipeline stage must be an object.")
                _known_stage(stage.get("id"))
                if stage["id"] in found:
                    raise AgentConfigError(f"The pipeline lists the {stage['id']} stage twice.")
            if isinstance(stage, Mapping) and stage.get("id") in _STAGE_BY_ID:
                found.setdefault(stage["id"], stage)
    return found


def _known_stage(stage_id: Any) -> None:
    if stage_id not in _STAGE_BY_ID:
        raise AgentConfigError(
            f"{stage_id!r} is not a pipeline stage; the stages are {', '.join(STAGE_IDS)}."
        )


# Keys an older console saved that normalisation folds into today's (`_upgrade_legacy`).
_LEGACY_KEYS: Final[Mapping[str, frozenset[str]]] = {
    stage: frozenset(flags) for stage, (_key, flags) in _LEGACY_FEATURE_KEYS.items()
}


def _check_keys(stage_id: str, saved: Mapping[str, Any]) -> None:
    """Refuse a setting this stage does not have, naming it (it would vanish on save)."""
    settings = saved.get("settings")
    keys: list[Any] = []
    if isinstance(settings, Mapping):
        keys = list(settings)
    elif isinstance(settings, list):
        for item in settings:
            if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
                raise AgentConfigError(f"A {stage_id} setting has no key.")
            keys.append(item["key"])
    elif settings is not None:
        raise AgentConfigError(f"The {stage_id} stage's settings must be a list or an object.")
    known = _SETTING_BY_KEY[stage_id]
    for key in keys:
        if key not in known and key not in _LEGACY_KEYS.get(stage_id, ()):
            raise AgentConfigError(
                f"The {stage_id} stage has no setting {key!r}; its settings are {', '.join(known)}."
            )


def normalize_pipeline(stored: Any, *, strict: bool = False) -> list[dict[str, Any]]:
    """Project stored stages (full or compact, any age) onto the current descriptors.

    Reading is lenient (what an older version stored must still load). With
    `strict` (a client saving), what normalisation would otherwise drop without a
    word is refused with `AgentConfigError`: an unknown stage, a stage listed
    twice, a setting the stage does not have.
    """
    by_id = _stored_stages(stored, strict=strict)
    stages = default_stages()
    for stage in stages:
        saved = by_id.get(stage["id"])
        if saved is None:
            continue
        if strict:
            _check_keys(stage["id"], saved)
        provider = saved.get("provider")
        if isinstance(provider, str) and provider in PROVIDER_OPTIONS[stage["id"]]:
            stage["provider"] = provider
        model = saved.get("model")
        custom_ok = stage["allowCustomModel"] or model in stage["modelOptions"]
        if isinstance(model, str) and model.strip() and custom_ok:
            stage["model"] = model.strip()
        values = _stored_values(saved)
        _upgrade_legacy(stage["id"], values)
        for setting in stage["settings"]:
            if setting["key"] in values:
                setting["value"] = _coerce(setting, values[setting["key"]])
    return stages


def compact_pipeline(stages: Any, *, strict: bool = False) -> list[dict[str, Any]]:
    """What the API stores: provider, model and every value, without UI descriptors
    (`strict`: refuse what would be dropped, see `normalize_pipeline`)."""
    return [
        {
            "id": s["id"],
            "provider": s["provider"],
            "model": s["model"],
            "settings": {x["key"]: x["value"] for x in s["settings"]},
        }
        for s in normalize_pipeline(stages, strict=strict)
    ]


# Model and deployment names, key names: short, printable, no spaces or quotes.
_REALTIME_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
MAX_BASE_URL_CHARS: Final = 500


def normalize_realtime(stored: Any) -> dict[str, Any]:
    realtime = default_realtime()
    if not isinstance(stored, Mapping):
        return realtime
    for key in ("provider", "fallback", "voice", "reasoningEffort"):
        if stored.get(key) in REALTIME_CHOICES[key]:
            realtime[key] = stored[key]
    for key in ("model", "transcriptionModel", "apiKeyName"):
        name = _as_text(stored.get(key))
        if name is not None and _REALTIME_NAME.match(name.strip()):
            realtime[key] = name.strip()
        elif key == "apiKeyName" and name is not None and not name.strip():
            realtime[key] = ""  # no key: an OpenAI-compatible server that needs none
    base_url = _as_text(stored.get("baseUrl"))
    if base_url is not None and len(base_url.strip()) <= MAX_BASE_URL_CHARS:
        realtime["baseUrl"] = base_url.strip()
    instructions = stored.get("instructions")
    if isinstance(instructions, str) and instructions.strip():
        realtime["instructions"] = instructions.strip()
    turn = stored.get("turnDetection")
    if isinstance(turn, Mapping):
        target = realtime["turnDetection"]
        for key in ("type", "eagerness"):
            if turn.get(key) in REALTIME_CHOICES[key]:
                target[key] = turn[key]
        for key, (low, high) in _TURN_RANGES.items():
            number = _as_number(turn.get(key))
            if number is not None:
                number = min(max(number, low), high)
                target[key] = number if isinstance(low, float) else int(number)
        for key in ("createResponse", "interruptResponse"):
            flag = _as_bool(turn.get(key))
            if flag is not None:
                target[key] = flag
    return realtime


def normalize_architecture(value: Any) -> str:
    return value if value in ARCHITECTURES else "sandwich"


def normalize_agent(agent: Mapping[str, Any]) -> dict[str, Any]:
    """The public VoiceAgent with its pipeline, realtime and tools blocks against current
    defaults."""
    result = dict(agent)
    result["architecture"] = normalize_architecture(agent.get("architecture"))
    result["realtime"] = normalize_realtime(agent.get("realtime"))
    result["pipeline"] = normalize_pipeline(agent.get("pipeline"))
    result["tools"] = normalize_tools(agent.get("tools"))
    return result


# --- reading values (used by the runtime) ------------------------------------------------------


def _stage(agent: Mapping[str, Any] | None, stage_id: str) -> Mapping[str, Any] | None:
    if not agent:
        return None
    pipeline = agent.get("pipeline")
    if isinstance(pipeline, Mapping) and "stages" in pipeline:
        pipeline = pipeline["stages"]
    if isinstance(pipeline, Mapping):
        stage = pipeline.get(stage_id)
        return stage if isinstance(stage, Mapping) else None
    if isinstance(pipeline, list):
        for stage in pipeline:
            if isinstance(stage, Mapping) and stage.get("id") == stage_id:
                return stage
    return None


def setting_value(agent: Mapping[str, Any] | None, stage_id: str, key: str) -> Any:
    """A stage setting of an agent, or its current default when anything is missing.

    Raises KeyError only for a (stage_id, key) pair that no default defines, which
    is a programming error rather than bad data.
    """
    descriptor = _SETTING_BY_KEY[stage_id][key]
    stage = _stage(agent, stage_id)
    if stage is None:
        return copy.deepcopy(descriptor["value"])
    values = _stored_values(stage)
    return _coerce(descriptor, values.get(key))


def setting_int(agent: Mapping[str, Any] | None, stage_id: str, key: str) -> int | None:
    """An integer reading of a setting; None for "off" values such as endpointing "false"."""
    number = _as_number(setting_value(agent, stage_id, key))
    return None if number is None else int(number)


def setting_float(agent: Mapping[str, Any] | None, stage_id: str, key: str) -> float | None:
    return _as_number(setting_value(agent, stage_id, key))


def setting_bool(agent: Mapping[str, Any] | None, stage_id: str, key: str) -> bool:
    flag = _as_bool(setting_value(agent, stage_id, key))
    return bool(flag)


def stage_model(agent: Mapping[str, Any] | None, stage_id: str) -> str:
    stage = _stage(agent, stage_id)
    model = stage.get("model") if stage else None
    return model if isinstance(model, str) and model else str(_STAGE_BY_ID[stage_id]["model"])


def stage_provider(agent: Mapping[str, Any] | None, stage_id: str) -> str:
    stage = _stage(agent, stage_id)
    provider = stage.get("provider") if stage else None
    if isinstance(provider, str) and provider in PROVIDER_OPTIONS[stage_id]:
        return provider
    return str(_STAGE_BY_ID[stage_id]["provider"])
