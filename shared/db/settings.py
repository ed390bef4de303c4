"""Settings of the database tooling (`opendot db ...`, `opendot up`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from shared.settings import BaseOpenDotSettings


class DbSettings(BaseOpenDotSettings):
    data_dir: Path = Field(
        default=Path(".opendot"),
        alias="OPENDOT_DATA_DIR",
        description="Where `opendot up` keeps its data: the embedded PostgreSQL (pgdata/) "
        "and, with local firmware storage, the release files (firmware/).",
    )
    api_db_role: str = Field(
        default="opendot_api",
        alias="OPENDOT_API_DB_ROLE",
        description="Login role `opendot db migrate` creates for the API in production.",
    )
    api_db_password: SecretStr | None = Field(
        default=None,
        alias="OPENDOT_API_DB_PASSWORD",
        description="Password of that role; set it and `opendot db migrate` creates or updates "
        "the role (NOINHERIT, member of authenticated and service_role only).",
    )
