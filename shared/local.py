"""Where `opendot up` runs the parts on this machine.

`opendot up`, `opendot demo` and `opendot device simulate` read the same
variables the API and the runtime read (PLATFORM_API_PORT, RUNTIME_PORT,
OPENDOT_DATA_DIR; environment or `.env`), so moving a port or the data
directory moves every default with it. Simulated devices keep their tokens in
`OPENDOT_DATA_DIR/devices`, beside the database that paired them: the demo's
Dot is the one `device simulate` finds, and a fresh data directory means fresh
devices.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.db.settings import DbSettings
from shared.settings import DEFAULT_API_PORT, DEFAULT_RUNTIME_PORT


class LocalSettings(DbSettings):
    api_port: int = Field(
        default=DEFAULT_API_PORT, alias="PLATFORM_API_PORT", description="API port."
    )
    runtime_port: int = Field(
        default=DEFAULT_RUNTIME_PORT, alias="RUNTIME_PORT", description="Runtime port."
    )

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def runtime_url(self) -> str:
        return f"http://127.0.0.1:{self.runtime_port}"

    @property
    def devices_dir(self) -> Path:
        return self.data_dir / "devices"
