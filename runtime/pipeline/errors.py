"""One exception tree for every provider; vendor errors are mapped to it at the adapter."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider failed. `retryable` says whether the same call may succeed later."""

    retryable: bool = False

    def __init__(self, provider: str, message: str, *, retry_after_s: float | None = None):
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.retry_after_s = retry_after_s


class ProviderTimeout(ProviderError):
    """No answer (or no first byte) within the provider's timeout."""

    retryable = True


class ProviderUnavailable(ProviderError):
    """Network failure, 5xx, 408/409 or 429: worth retrying after a backoff."""

    retryable = True


class ProviderAuthError(ProviderError):
    """The provider refused the credentials (401/403)."""


class ProviderBadRequest(ProviderError):
    """The provider refused the request itself (other 4xx)."""


class ProviderBadResponse(ProviderError):
    """The provider answered with something we could not understand, or nothing usable."""


class ConfigRefused(ProviderError):
    """Agent configuration the runtime will not act on: an unknown secret name, an
    address on a private network, an unknown provider. Never retryable."""
