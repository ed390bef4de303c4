"""Which provider key an agent's `api_key_name` may mean, and where it may go.

An agent names a key; it never holds one. The name is looked up in exactly two
places, in this order:

1. the user's stored secrets (`user_secrets`, AES-GCM ciphertexts that the
   runtime decrypts with OPENDOT_SECRETS_KEY; aad = "<user_id>:<name>"): the
   user's own key, which may be sent wherever the user points the agent;
2. the operator's allow-list (OPENDOT_PROVIDER_KEY_NAMES): the operator's key,
   which is only ever sent to the origin the operator configured for it, so an
   agent cannot point `base_url` at its own server and collect the operator's key.

Platform secrets (the internal secret, the secrets key, database URLs, ...) can
never be named, whatever the configuration. Anything else is refused with a
sentence that says what the agent may use instead.

A `ProviderKey` keeps its value out of `repr`, `str`, logs and exceptions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import SecretStr

from runtime.pipeline.errors import ConfigRefused
from runtime.providers.settings import ProviderSettings, never_nameable, origin_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderKey:
    name: str
    source: Literal["user", "operator"]
    # Operator keys: the only origins the key may be sent to. User keys: empty (anywhere public).
    origins: tuple[str, ...]
    _value: SecretStr = field(repr=False)

    def reveal(self) -> str:
        """The key itself; call only where it is put into a request header."""
        return self._value.get_secret_value()

    def __str__(self) -> str:
        return f"<{self.source} key {self.name}>"

    def check_destination(self, url: str, provider: str) -> None:
        """Refuse to send an operator key anywhere but its configured origin."""
        if self.source == "user":
            return
        target = origin_of(url)
        if target not in self.origins:
            allowed = ", ".join(self.origins) or "nowhere"
            raise ConfigRefused(
                provider,
                f"api_key_name {self.name} is the operator's key and is only sent to "
                f"{allowed}, not {target}; to use that endpoint, store your own key as a "
                "secret and name it in api_key_name.",
            )


def decode_secrets_key(value: SecretStr | None) -> bytes | None:
    """OPENDOT_SECRETS_KEY as 32 raw bytes, or None when unset or malformed."""
    if value is None or not value.get_secret_value():
        return None
    from shared.secretbox import SecretBoxError, parse_key

    try:
        return parse_key(value.get_secret_value())
    except SecretBoxError:
        return None


class KeyResolver:
    """Resolves `api_key_name` for one user's session."""

    def __init__(
        self,
        settings: ProviderSettings,
        secrets: Mapping[str, str] | None = None,
        user_id: str | None = None,
    ) -> None:
        self._settings = settings
        self._secrets = dict(secrets or {})
        self._user_id = user_id

    def __repr__(self) -> str:
        return f"KeyResolver(user_id={self._user_id!r}, stored={sorted(self._secrets)!r})"

    def offered(self) -> list[str]:
        """Names an agent of this user may use (for messages and the console)."""
        names = [n for n in self._settings.key_entries() if not never_nameable(n)]
        return sorted(set(names) | {n for n in self._secrets if not never_nameable(n)})

    def resolve(self, name: str, *, provider: str) -> ProviderKey | None:
        """The key for `name`; None when it may be used but has no value configured.

        Raises ConfigRefused when the name may not be used at all.
        """
        name = (name or "").strip()
        if not name:
            return None
        if never_nameable(name):
            raise ConfigRefused(
                provider,
                f"api_key_name {name} names a platform secret, which agents can never use.",
            )
        if name in self._secrets:
            return self._open_user_secret(name, provider)
        entries = self._settings.key_entries()
        if name not in entries:
            offered = ", ".join(self.offered()) or "none"
            raise ConfigRefused(
                provider,
                f"api_key_name {name} is neither a key the operator offers nor one of your "
                f"stored secrets (you may use: {offered}).",
            )
        found = self._settings.operator_key(name)
        if found is None:
            log.info("%s: operator key %s is allow-listed but not configured", provider, name)
            return None
        value, origins = found
        return ProviderKey(name, "operator", origins, value)

    def _open_user_secret(self, name: str, provider: str) -> ProviderKey:
        key = decode_secrets_key(self._settings.secrets_key)
        if key is None:
            raise ConfigRefused(
                provider,
                f"stored secret {name} cannot be read: OPENDOT_SECRETS_KEY is not set to a "
                "base64 32-byte key on this runtime.",
            )
        if not self._user_id:
            raise ConfigRefused(provider, f"stored secret {name} has no owner to check it against.")
        from shared.secretbox import open_  # the API engineer's module, same contract both ways

        try:
            plaintext = open_(key, self._secrets[name], f"{self._user_id}:{name}")
        except Exception:
            # The reason (tag mismatch, bad base64) says nothing useful and could
            # carry ciphertext; keep it out of the message.
            raise ConfigRefused(
                provider,
                f"stored secret {name} could not be decrypted (was OPENDOT_SECRETS_KEY rotated?).",
            ) from None
        return ProviderKey(name, "user", (), SecretStr(plaintext))
