"""Operator configuration of the cloud speech and language providers.

Everything an agent may *not* decide lives here: which provider keys exist, which
of them an agent may name, where each operator key may be sent, and whether
private network addresses are reachable. Agents only choose among what the
operator offers (see `keys.py` and `netguard.py`).

Operator keys beyond the three well-known ones are declared in the allow-list
as `NAME=https://origin`; their values are read here, the one module allowed to
read the environment for this part.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, field_validator, model_validator

from shared.settings import CommonSettings, SettingsError

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_DEEPGRAM_BASE_URL = "https://api.deepgram.com"

# Names an agent can never reference, even if an operator lists them by mistake:
# they unlock the platform itself rather than a speech or language provider.
NEVER_NAMEABLE = frozenset(
    {
        "OPENDOT_RUNTIME_INTERNAL_SECRET",
        "OPENDOT_SECRETS_KEY",
        "OPENDOT_SESSION_SECRET",
        "SUPABASE_JWT_SECRET",
        "SUPABASE_SERVICE_ROLE_KEY",
        "POSTGRES_URI",
        "POSTGRES_PASSWORD",
        "DATABASE_URL",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    }
)


def never_nameable(name: str) -> bool:
    """Platform secrets: the fixed list plus everything in OpenDot's own namespace."""
    return name in NEVER_NAMEABLE or name.upper().startswith("OPENDOT_")


def origin_of(url: str) -> str:
    """`scheme://host[:port]`, lower-cased, default ports dropped."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(scheme)
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


class ProviderSettings(CommonSettings):
    """Provider keys, endpoints, the key allow-list and network policy."""

    openai_api_key: SecretStr | None = Field(
        default=None,
        alias="OPENAI_API_KEY",
        description="OpenAI key (LLM, transcription, TTS); unset means OpenAI is not offered.",
    )
    openai_base_url: str = Field(
        default=DEFAULT_OPENAI_BASE_URL,
        alias="OPENAI_BASE_URL",
        description=(
            "Where OPENAI_API_KEY is sent; agents naming another base_url need their own key."
        ),
    )
    deepgram_api_key: SecretStr | None = Field(
        default=None,
        alias="DEEPGRAM_API_KEY",
        description="Deepgram key (live STT, Aura TTS); unset means Deepgram is not offered.",
    )
    deepgram_base_url: str = Field(
        default=DEFAULT_DEEPGRAM_BASE_URL,
        alias="DEEPGRAM_BASE_URL",
        description="Deepgram API origin (https); the live socket uses the same host over wss.",
    )
    azure_speech_key: SecretStr | None = Field(
        default=None,
        alias="AZURE_SPEECH_KEY",
        description="Azure Speech key; needs AZURE_SPEECH_REGION and the `azure` extra.",
    )
    azure_speech_region: str | None = Field(
        default=None,
        alias="AZURE_SPEECH_REGION",
        description="Azure Speech region, e.g. westeurope.",
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        alias="OPENDOT_SECRETS_KEY",
        description="Base64 32-byte AES-GCM key that decrypts users' stored provider secrets.",
    )
    provider_key_names: str = Field(
        default="OPENAI_API_KEY,DEEPGRAM_API_KEY",
        alias="OPENDOT_PROVIDER_KEY_NAMES",
        description=(
            "Operator keys agents may name in api_key_name, comma-separated; extra keys as "
            "NAME=https://origin (the only place that key is sent)."
        ),
    )
    allow_private_base_urls: bool = Field(
        default=False,
        alias="OPENDOT_ALLOW_PRIVATE_BASE_URLS",
        description=(
            "Let agents reach loopback/private/link-local hosts (a local Ollama); "
            "never in shared deployments."
        ),
    )
    provider_connect_timeout_s: float = Field(
        default=5.0,
        alias="OPENDOT_PROVIDER_CONNECT_TIMEOUT_S",
        gt=0,
        description="TCP+TLS connect timeout for every provider call, seconds.",
    )
    provider_first_byte_timeout_s: float = Field(
        default=8.0,
        alias="OPENDOT_PROVIDER_FIRST_BYTE_TIMEOUT_S",
        gt=0,
        description="Longest wait for a provider's first byte before the next provider takes over.",
    )
    provider_timeout_s: float = Field(
        default=30.0,
        alias="OPENDOT_PROVIDER_TIMEOUT_S",
        gt=0,
        description="Whole-call limit for speech provider calls (the LLM uses its own timeout_s).",
    )
    provider_max_retries: int = Field(
        default=2,
        alias="OPENDOT_PROVIDER_MAX_RETRIES",
        ge=0,
        le=10,
        description=(
            "Retries on 408/409/429/5xx/network errors before the first byte (speech providers)."
        ),
    )
    # Values of the extra allow-listed names, read from the environment; never printed.
    _extra_keys: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    @field_validator("openai_base_url", "deepgram_base_url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip().rstrip("/")
        if not value:
            return {"openai_base_url": DEFAULT_OPENAI_BASE_URL}.get(
                info.field_name or "", DEFAULT_DEEPGRAM_BASE_URL
            )
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
            raise SettingsError(f"{value!r} is not an http(s) URL.")
        return value

    @model_validator(mode="after")
    def _check_allow_list(self) -> ProviderSettings:
        for name in self.key_entries():
            if never_nameable(name):
                raise SettingsError(
                    f"OPENDOT_PROVIDER_KEY_NAMES lists {name}, which unlocks the platform "
                    "itself and can never be offered to agents; remove it."
                )
        return self

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        # Extra keys: read their values once, here, from the process environment or `.env`.
        env_file = self.model_config.get("env_file")
        file_values: dict[str, str | None] = {}
        if isinstance(env_file, str) and os.path.isfile(env_file):
            file_values = dict(dotenv_values(env_file))
        for name in self.key_entries():
            if name in _BUILTIN_ORIGIN_FIELDS or never_nameable(name):
                continue
            raw = os.environ.get(name) or file_values.get(name)
            if raw:
                self._extra_keys[name] = SecretStr(raw)

    def key_entries(self) -> dict[str, str | None]:
        """Allow-listed name -> declared origin (None: the provider's configured origin)."""
        entries: dict[str, str | None] = {}
        for raw in self.provider_key_names.split(","):
            item = raw.strip()
            if not item:
                continue
            name, _, origin = item.partition("=")
            name = name.strip()
            if not name.replace("_", "").isalnum():
                raise SettingsError(f"OPENDOT_PROVIDER_KEY_NAMES: {name!r} is not a key name.")
            if origin.strip():
                scheme = urlsplit(origin.strip()).scheme
                if scheme not in ("http", "https", "ws", "wss"):
                    raise SettingsError(
                        f"OPENDOT_PROVIDER_KEY_NAMES: origin for {name} must be an http(s) URL."
                    )
                entries[name] = origin_of(origin)
            else:
                entries[name] = None
        return entries

    def operator_key(self, name: str) -> tuple[SecretStr, tuple[str, ...]] | None:
        """The allow-listed key `name` and the origins it may be sent to, if configured."""
        entries = self.key_entries()
        if name not in entries or never_nameable(name):
            return None
        declared = entries[name]
        field = _BUILTIN_ORIGIN_FIELDS.get(name)
        value: SecretStr | None
        if field is not None:
            value = getattr(self, field[0])
            origins = [origin_of(getattr(self, field[1]))] if field[1] else []
        else:
            value = self._extra_keys.get(name)
            origins = []
        if declared:
            origins.append(declared)
        if value is None or not value.get_secret_value():
            return None
        return value, tuple(origins)


# Built-in key name -> (value field, base-url field or "" when the key has no URL).
_BUILTIN_ORIGIN_FIELDS: dict[str, tuple[str, str]] = {
    "OPENAI_API_KEY": ("openai_api_key", "openai_base_url"),
    "DEEPGRAM_API_KEY": ("deepgram_api_key", "deepgram_base_url"),
    "AZURE_SPEECH_KEY": ("azure_speech_key", ""),
}
