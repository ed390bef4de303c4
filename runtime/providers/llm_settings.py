"""The `llm` stage settings (docs/protocols.md §6) parsed into one typed, checked value.

Settings arrive as the console stores them: numbers as strings, JSON objects as
text, key-value lists in several shapes. Parsing is liberal about shape and
strict about meaning; whatever could move a key or break streaming is refused
with a sentence the agent's owner can act on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.pipeline.errors import ConfigRefused

# Headers that carry credentials or control the connection: an agent may not set
# them, so it can neither swap the key we send nor smuggle its own into config.
FORBIDDEN_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "api-key",
        "x-api-key",
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "upgrade",
        "expect",
        "accept",
    }
)
# Body fields the adapter owns: the conversation and the transport mode.
PROTECTED_PARAMETERS = frozenset({"stream", "input", "messages", "instructions"})

MAX_STOP_SEQUENCES = 4


@dataclass(frozen=True)
class LlmConfig:
    api: str = "responses"
    stream: bool = True
    temperature: float | None = 1.0
    max_output_tokens: int | None = 512
    reasoning_effort: str = "low"
    verbosity: str = "low"
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_mode: bool = False
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 70.0
    max_retries: int = 2
    requests_per_second: float = 50.0
    extra_parameters: Mapping[str, Any] = field(default_factory=dict)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(value: object, key: str, provider: str, lo: float, hi: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigRefused(provider, f"llm setting {key} must be a number.") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise ConfigRefused(provider, f"llm setting {key} must be between {lo:g} and {hi:g}.")
    return number


def _bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _json_object(value: object, key: str, provider: str) -> dict[str, Any]:
    if _blank(value):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigRefused(provider, f"llm setting {key} is not valid JSON.") from None
    if not isinstance(value, Mapping):
        raise ConfigRefused(provider, f"llm setting {key} must be a JSON object.")
    return dict(value)


def _headers(value: object, provider: str) -> dict[str, str]:
    pairs: list[tuple[object, object]] = []
    if isinstance(value, str):
        value = _json_object(value, "extra_headers", provider)
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, Mapping):
                pairs.append((item.get("key", item.get("name")), item.get("value")))
            elif isinstance(item, list | tuple) and len(item) == 2:
                pairs.append((item[0], item[1]))
            else:
                raise ConfigRefused(provider, "llm setting extra_headers has an unreadable entry.")
    elif not _blank(value):
        raise ConfigRefused(provider, "llm setting extra_headers must be key/value pairs.")
    headers: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name = str(raw_name or "").strip()
        if not name:
            continue
        if name.lower() in FORBIDDEN_HEADERS or name.lower().startswith("proxy-"):
            raise ConfigRefused(
                provider,
                f"extra_headers may not set {name}: credentials go in a stored secret named "
                "by api_key_name, and connection headers belong to the runtime.",
            )
        text = "" if raw_value is None else str(raw_value)
        if any(c in name + text for c in "\r\n\0") or not name.isascii():
            raise ConfigRefused(provider, f"extra_headers entry {name!r} has invalid characters.")
        headers[name] = text
    return headers


def parse_llm_settings(settings: Mapping[str, Any], *, provider: str) -> LlmConfig:
    s = settings
    api = str(s.get("api") or "responses").strip()
    if api not in ("responses", "chat_completions"):
        raise ConfigRefused(provider, "llm setting api must be responses or chat_completions.")
    features = s.get("response_features")
    stream = True
    if isinstance(features, list | tuple):
        stream = "stream" in features
    if "stream" in s and not _blank(s["stream"]):
        stream = _bool(s["stream"])
    temperature = s.get("temperature", 1.0)
    stop_raw = s.get("stop_sequences") or ()
    if isinstance(stop_raw, str):
        stop_raw = [stop_raw]
    stop = tuple(str(x) for x in stop_raw if str(x))
    if len(stop) > MAX_STOP_SEQUENCES:
        raise ConfigRefused(provider, f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed.")
    seed_raw = s.get("seed")
    seed = None if _blank(seed_raw) else int(_number(seed_raw, "seed", provider, -(2**63), 2**63))
    tokens_raw = s.get("max_output_tokens", 512)
    extra = _json_object(s.get("extra_parameters"), "extra_parameters", provider)
    protected = sorted(PROTECTED_PARAMETERS & set(extra))
    if protected:
        raise ConfigRefused(
            provider,
            f"extra_parameters may not set {', '.join(protected)}; the runtime owns the "
            "conversation and streaming.",
        )
    return LlmConfig(
        api=api,
        stream=stream,
        temperature=None
        if _blank(temperature)
        else _number(temperature, "temperature", provider, 0, 2),
        max_output_tokens=None
        if _blank(tokens_raw)
        else int(_number(tokens_raw, "max_output_tokens", provider, 1, 1_000_000)),
        reasoning_effort=str(s.get("reasoning_effort") or "default").strip(),
        verbosity=str(s.get("verbosity") or "default").strip(),
        stop=stop,
        seed=seed,
        json_mode=_bool(s.get("json_mode", False)),
        extra_headers=_headers(s.get("extra_headers"), provider),
        timeout_s=_number(s.get("timeout_s", 70) or 70, "timeout_s", provider, 1, 600),
        max_retries=int(_number(s.get("max_retries", 2) or 0, "max_retries", provider, 0, 10)),
        requests_per_second=_number(
            s.get("requests_per_second", 50) or 50, "requests_per_second", provider, 0.1, 1000
        ),
        extra_parameters=extra,
    )
