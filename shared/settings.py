"""Typed settings read once from the environment (and an optional `.env`).

Every part of OpenDot reads its configuration through a subclass of
`CommonSettings`; nothing else in the code base reads `os.environ`. Secrets are
`SecretStr` so they never print, and the well-known development placeholders
are refused outside development so a forgotten `.env` cannot reach production.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Where the two servers listen unless PLATFORM_API_PORT / RUNTIME_PORT say otherwise.
# Each part reads the other's port too, so the URLs derived from it follow a move.
DEFAULT_API_PORT = 8788
DEFAULT_RUNTIME_PORT = 8787

# Well-known development placeholders (the original's defaults); refused in production.
DEV_INTERNAL_SECRET = "opendot-local-runtime-internal-secret-change-me"  # noqa: S105
DEV_SESSION_SECRET = "opendot-local-dev-session-secret-change-me"  # noqa: S105
_PLACEHOLDERS = frozenset({DEV_INTERNAL_SECRET, DEV_SESSION_SECRET, "", "change-me"})


class SettingsError(ValueError):
    """Configuration that cannot be used; the message says which variable and why."""


class BaseOpenDotSettings(BaseSettings):
    """What every part reads: where it runs, which database, how loud it logs."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    env: Literal["development", "test", "production"] = Field(
        default="development",
        alias="OPENDOT_ENV",
        description="development | test | production; production refuses placeholder secrets.",
    )
    postgres_uri: str | None = Field(
        default=None,
        alias="POSTGRES_URI",
        description="PostgreSQL URL; unset means `opendot up` starts an embedded server.",
    )
    log_level: str = Field(
        default="INFO", alias="OPENDOT_LOG_LEVEL", description="Python log level name."
    )

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Self:
        if self.env != "production":
            return self
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value() in _PLACEHOLDERS:
                raise SettingsError(
                    f"{field.alias or name} still has its development placeholder; "
                    "set a real secret before running with OPENDOT_ENV=production."
                )
        return self


class CommonSettings(BaseOpenDotSettings):
    """Settings both the API and the runtime need (the database tooling does not:
    it subclasses `BaseOpenDotSettings`, so migrating needs no runtime secret)."""

    runtime_internal_secret: SecretStr = Field(
        default=SecretStr(DEV_INTERNAL_SECRET),
        alias="OPENDOT_RUNTIME_INTERNAL_SECRET",
        description="Shared secret the runtime sends to the API's internal endpoints.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default=["http://localhost:5173", "http://127.0.0.1:5173"],
        alias="OPENDOT_CORS_ORIGINS",
        description="Comma-separated console origins allowed by CORS on the API and the "
        "runtime (never '*').",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip().rstrip("/") for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _no_wildcard_origin(self) -> Self:
        if "*" in self.cors_origins:
            raise SettingsError("OPENDOT_CORS_ORIGINS may not contain '*'; list the origins.")
        return self
