"""Where a Realtime session connects, with which key: the same rules as the pipeline.

`baseUrl` and `apiKeyName` in an agent's realtime block mean what a pipeline
stage's `base_url` and `api_key_name` mean:

- `baseUrl` "" is the provider's own URL: the operator's OPENAI_BASE_URL for
  `openai`; `azure` has none and needs its resource URL
  (`https://<resource>.openai.azure.com/openai/v1`). Any other URL is an
  OpenAI-compatible server; it must be public unless the operator allows
  private addresses (`netguard`, checked again when the socket connects).
- `echo` is the in-process stand-in on the offline engines (`loopback`): no
  URL, no key.
- `apiKeyName` names a user's stored secret or an operator key from the
  allow-list (`keys.KeyResolver`); an operator key is only sent to its origin.
  "" means no key (a compatible server that needs none; never OpenAI itself).

OpenAI takes `Authorization: Bearer`, Azure `api-key`. Both get a safety
identifier: a hash of the user id, never the id itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

from runtime.pipeline.errors import ConfigRefused
from runtime.providers.keys import KeyResolver, ProviderKey
from runtime.providers.netguard import precheck_url
from runtime.providers.settings import DEFAULT_OPENAI_BASE_URL, ProviderSettings, origin_of
from runtime.realtime.config import RealtimeConfig

PROVIDER = "realtime"


def safety_identifier(user_id: str | None) -> str | None:
    """What the provider may know of the user (the original's `opendot:` + sha256)."""
    if not user_id:
        return None
    return hashlib.sha256(f"opendot:{user_id}".encode()).hexdigest()


@dataclass(frozen=True)
class RealtimeTarget:
    provider: str  # "openai" | "azure"
    base_url: str  # http(s), no trailing slash: the key's origin is checked on it
    model: str
    key: ProviderKey | None = field(default=None, repr=False)
    safety_id: str | None = None
    allow_private: bool = False
    connect_timeout_s: float = 5.0

    @property
    def ws_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        path = parts.path.rstrip("/") + "/realtime"
        return urlunsplit((scheme, parts.netloc, path, f"model={quote(self.model)}", ""))

    @property
    def client_secrets_url(self) -> str:
        return self.base_url + "/realtime/client_secrets"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.key.reveal(),) if self.key is not None else ()

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.key is not None:
            if self.provider == "azure":
                headers["api-key"] = self.key.reveal()
            else:
                headers["Authorization"] = f"Bearer {self.key.reveal()}"
        if self.safety_id:
            headers["OpenAI-Safety-Identifier"] = self.safety_id
        return headers


def resolve_target(
    config: RealtimeConfig,
    settings: ProviderSettings,
    secrets: Mapping[str, str] | None,
    user_id: str | None,
) -> RealtimeTarget:
    """The session's target; `ConfigRefused` says in a sentence why there is none."""
    if config.provider == "echo":
        return RealtimeTarget(provider="echo", base_url="loopback:", model="echo")
    custom = config.base_url.strip().rstrip("/")
    if config.provider == "azure" and not custom:
        raise ConfigRefused(
            PROVIDER,
            "the azure provider needs baseUrl, e.g. https://<resource>.openai.azure.com/openai/v1.",
        )
    base_url = custom or settings.openai_base_url.rstrip("/")
    precheck_url(
        base_url,
        allow_private=settings.allow_private_base_urls,
        provider=PROVIDER,
        what="realtime baseUrl",
    )
    name = config.api_key_name.strip()
    key = KeyResolver(settings, secrets, user_id).resolve(name, provider=PROVIDER) if name else None
    if key is not None:
        key.check_destination(base_url, PROVIDER)
    elif config.provider == "azure" or origin_of(base_url) == origin_of(DEFAULT_OPENAI_BASE_URL):
        missing = f"{name} is not configured" if name else "apiKeyName is empty"
        raise ConfigRefused(PROVIDER, f"no key for {base_url} ({missing}).")
    return RealtimeTarget(
        provider=config.provider,
        base_url=base_url,
        model=config.model,
        key=key,
        safety_id=safety_identifier(user_id),
        allow_private=settings.allow_private_base_urls,
        connect_timeout_s=settings.provider_connect_timeout_s,
    )
