"""Settings of the platform API (`functions/`), read once per process."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from functions.client_address import IPNetwork, parse_networks
from shared.firmware.settings import FirmwareSettings
from shared.settings import (
    DEFAULT_API_PORT,
    DEFAULT_RUNTIME_PORT,
    CommonSettings,
    SettingsError,
)

DEV_USER_ID = "00000000-0000-4000-8000-000000000001"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float) -> float:
    """Seconds from `90`, `15m`, `12h`, `30d` (the original's OPENDOT_SESSION_TTL syntax)."""
    if isinstance(text, (int, float)):
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a duration such as 900, 15m, 12h or 30d")
    return float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]


class ApiSettings(CommonSettings, FirmwareSettings):
    """Everything `create_app` and the Lambda handler read."""

    host: str = Field(
        default="0.0.0.0", alias="PLATFORM_API_HOST", description="Address `opendot api` binds."
    )
    port: int = Field(
        default=DEFAULT_API_PORT,
        alias="PLATFORM_API_PORT",
        description="Port `opendot api` listens on.",
    )
    runtime_port: int = Field(
        default=DEFAULT_RUNTIME_PORT,
        alias="RUNTIME_PORT",
        description="Port `opendot runtime` listens on; the public runtime URLs default to it.",
    )
    runtime_public_http_url: str = Field(
        default="",
        alias="OPENDOT_RUNTIME_PUBLIC_HTTP_URL",
        description="Public runtime base URL (empty: http://localhost:RUNTIME_PORT); "
        "https here makes OTA answers use wss://.",
    )
    runtime_public_ws_url: str = Field(
        default="",
        alias="OPENDOT_RUNTIME_PUBLIC_WS_URL",
        description="Public browser voice WebSocket URL handed out with voice tokens "
        "(empty: ws://localhost:RUNTIME_PORT/voice).",
    )
    session_secret: SecretStr = Field(
        default=SecretStr("opendot-local-dev-session-secret-change-me"),
        alias="OPENDOT_SESSION_SECRET",
        description="HS256 key of local session JWTs.",
    )
    session_issuer: str = Field(
        default="opendot-platform",
        alias="OPENDOT_SESSION_ISSUER",
        description="iss of local session JWTs.",
    )
    session_audience: str = Field(
        default="opendot-platform",
        alias="OPENDOT_SESSION_AUDIENCE",
        description="aud of local session JWTs.",
    )
    session_ttl: str = Field(
        default="1h",
        alias="OPENDOT_SESSION_TTL",
        description="Lifetime of one local session JWT (renew with POST /api/auth/refresh).",
    )
    session_max_age: str = Field(
        default="30d",
        alias="OPENDOT_SESSION_MAX_AGE",
        description="How long a login can be renewed before the password is asked again.",
    )
    local_auth_disabled: bool = Field(
        default=False,
        alias="OPENDOT_LOCAL_AUTH_DISABLED",
        description="true turns local email/password auth off (signup/login answer 403).",
    )
    auth_required: bool = Field(
        default=False,
        alias="PLATFORM_AUTH_REQUIRED",
        description="true: requests without a bearer get 401; false: they act as the dev user.",
    )
    supabase_url: str | None = Field(
        default=None,
        alias="SUPABASE_URL",
        description="Supabase project URL; turns on JWKS verification of Supabase JWTs.",
    )
    supabase_jwt_secret: SecretStr | None = Field(
        default=None,
        alias="SUPABASE_JWT_SECRET",
        description="Supabase legacy HS256 JWT secret (fallback verification).",
    )
    jwks_cache_s: float = Field(
        default=600.0,
        alias="OPENDOT_JWKS_CACHE_S",
        ge=0,
        le=600,
        description="Seconds a fetched JWKS is trusted before it is refreshed (max 600).",
    )
    jwks_timeout_s: float = Field(
        default=3.0, alias="OPENDOT_JWKS_TIMEOUT_S", gt=0, description="JWKS fetch timeout."
    )
    jwks_cooldown_s: float = Field(
        default=10.0,
        alias="OPENDOT_JWKS_COOLDOWN_S",
        ge=0,
        description="Minimum seconds between JWKS refetches caused by an unknown kid.",
    )
    dev_user_id: str = Field(
        default=DEV_USER_ID,
        alias="OPENDOT_DEV_USER_ID",
        description="User id of requests without a bearer when auth is not required.",
    )
    dev_user_email: str = Field(
        default="demo@opendot.local",
        alias="OPENDOT_DEV_USER_EMAIL",
        description="Email of the dev user (created on first sight).",
    )
    dev_user_name: str = Field(
        default="Demo", alias="OPENDOT_DEV_USER_NAME", description="Display name of the dev user."
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        alias="OPENDOT_SECRETS_KEY",
        description="32-byte key (base64) sealing user secrets; unset disables secret storage.",
    )
    db_pooler: bool | None = Field(
        default=None,
        alias="OPENDOT_DB_POOLER",
        description="true when POSTGRES_URI is a transaction pooler (auto: port 6543 or "
        "?pgbouncer=true); turns off prepared-statement caching.",
    )
    db_pool_max: int = Field(
        default=4,
        alias="OPENDOT_DB_POOL_MAX",
        ge=1,
        description="Connections per API process (1-2 on Lambda, more under uvicorn).",
    )
    login_max_failures: int = Field(
        default=5,
        alias="OPENDOT_LOGIN_MAX_FAILURES",
        ge=1,
        description="Failed logins per (email, client address) within 15 min before 429 "
        "(x4 per address across emails).",
    )
    login_max_failures_per_email: int = Field(
        default=50,
        alias="OPENDOT_LOGIN_MAX_FAILURES_PER_EMAIL",
        ge=1,
        description="Failed logins per email from all addresses within 15 min before 429.",
    )
    signup_max_per_address: int = Field(
        default=10,
        alias="OPENDOT_SIGNUP_MAX_PER_ADDRESS",
        ge=1,
        description="Sign-ups per client address per hour before 429.",
    )
    ota_max_pending_per_address: int = Field(
        default=32,
        alias="OPENDOT_OTA_MAX_PENDING_PER_ADDRESS",
        ge=1,
        description="Devices from one address that may wait for a pairing code at once.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default=[],
        alias="OPENDOT_TRUSTED_PROXIES",
        description="Comma-separated addresses/networks of your proxies whose "
        "X-Forwarded-For is believed (empty: never; Lambda needs none).",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("supabase_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().rstrip("/")
            return value or None
        return value

    @model_validator(mode="after")
    def _check(self) -> ApiSettings:
        # Unset public URLs follow the runtime's port, so moving it moves them.
        if not self.runtime_public_http_url.strip():
            self.runtime_public_http_url = f"http://localhost:{self.runtime_port}"
        if not self.runtime_public_ws_url.strip():
            self.runtime_public_ws_url = f"ws://localhost:{self.runtime_port}/voice"
        for name in ("session_ttl", "session_max_age"):
            try:
                parse_duration(getattr(self, name))
            except ValueError as exc:
                raise SettingsError(f"{name.upper()}: {exc}") from exc
        if self.secrets_key is not None and self.secrets_key.get_secret_value().strip():
            from shared.secretbox import SecretBoxError, parse_key

            try:
                parse_key(self.secrets_key.get_secret_value())
            except SecretBoxError as exc:
                raise SettingsError(str(exc)) from exc
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise SettingsError(f"OPENDOT_TRUSTED_PROXIES: {exc}.") from exc
        if self.env == "production" and self.dev_user_fallback:
            raise SettingsError("Set PLATFORM_AUTH_REQUIRED=true when OPENDOT_ENV=production.")
        return self

    @cached_property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def dev_user_fallback(self) -> bool:
        return not self.auth_required

    @property
    def local_auth_enabled(self) -> bool:
        return not self.local_auth_disabled

    @property
    def session_ttl_s(self) -> float:
        return parse_duration(self.session_ttl)

    @property
    def session_max_age_s(self) -> float:
        return parse_duration(self.session_max_age)

    @cached_property
    def secrets_key_bytes(self) -> bytes | None:
        if self.secrets_key is None or not self.secrets_key.get_secret_value().strip():
            return None
        from shared.secretbox import parse_key

        return parse_key(self.secrets_key.get_secret_value())

    @property
    def uses_transaction_pooler(self) -> bool:
        if self.db_pooler is not None:
            return self.db_pooler
        if not self.postgres_uri:
            return False
        parts = urlsplit(self.postgres_uri)
        query = parse_qs(parts.query)
        flag = query.get("pgbouncer", [""])[0].lower() in {"1", "true", "yes"}
        try:
            port = parts.port
        except ValueError:
            port = None
        return flag or port == 6543

    @property
    def tls_runtime(self) -> bool:
        return self.runtime_public_http_url.lower().startswith("https://")
