"""Settings of the database tooling (`opendot db ...`, `opendot up`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import BaseOpenDotSettings


class DbSettings(BaseOpenDotSettings):
    data_dir: Path = Field(
        default=Path(".opendot"),
        alias="OPENDOT_DATA_DIR",
        description="Where `opendot up` keeps its data: the embedded PostgreSQL (pgdata/) "
        "and, with local firmware storage, the release files (firmware/).",
    )
