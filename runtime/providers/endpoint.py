"""Where a speech provider sends its requests, and with what limits.

Bundles what every HTTP speech adapter needs (base URL, key, network policy,
timeouts, client) so the adapters hold only vendor logic. The key's own rule
(`ProviderKey.check_destination`) is applied when the endpoint is made, so an
operator key can never be attached to a URL it was not configured for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from runtime.providers.http import CallPolicy, shared_client
from runtime.providers.keys import ProviderKey
from runtime.providers.netguard import Resolver, vet_url
from runtime.providers.settings import ProviderSettings


@dataclass
class Endpoint:
    provider: str
    base_url: str
    key: ProviderKey | None
    allow_private: bool = False
    timeout_s: float = 30.0
    first_byte_timeout_s: float = 8.0
    connect_timeout_s: float = 5.0
    max_retries: int = 2
    client: httpx.AsyncClient | None = field(default=None, repr=False)
    resolver: Resolver | None = field(default=None, repr=False)
    _vetted: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if self.key is not None:
            self.key.check_destination(self.base_url, self.provider)

    @classmethod
    def from_settings(
        cls, provider: str, base_url: str, key: ProviderKey | None, settings: ProviderSettings
    ) -> Endpoint:
        return cls(
            provider=provider,
            base_url=base_url,
            key=key,
            allow_private=settings.allow_private_base_urls,
            timeout_s=settings.provider_timeout_s,
            first_byte_timeout_s=settings.provider_first_byte_timeout_s,
            connect_timeout_s=settings.provider_connect_timeout_s,
            max_retries=settings.provider_max_retries,
        )

    def http(self) -> httpx.AsyncClient:
        return self.client or shared_client(allow_private=self.allow_private)

    def policy(self) -> CallPolicy:
        return CallPolicy(
            provider=self.provider,
            timeout_s=self.timeout_s,
            first_byte_timeout_s=min(self.first_byte_timeout_s, self.timeout_s),
            connect_timeout_s=self.connect_timeout_s,
            max_retries=self.max_retries,
            secrets=(self.key.reveal(),) if self.key is not None else (),
        )

    async def vet(self, schemes: tuple[str, ...] = ("http", "https")) -> list[str]:
        """Check the base URL's addresses (once per endpoint; connections re-check)."""
        addresses = await vet_url(
            self.base_url,
            allow_private=self.allow_private,
            provider=self.provider,
            schemes=schemes,
            resolver=self.resolver,
        )
        self._vetted = True
        return addresses

    async def ensure_vetted(self) -> None:
        if not self._vetted:
            await self.vet()
