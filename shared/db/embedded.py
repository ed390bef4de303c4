"""The embedded PostgreSQL server (`pgserver` wheel) behind `opendot up`.

pgserver ships PostgreSQL 16 binaries, listens on a unix socket only and has
no pgcrypto; our migrations need none of that. As root it runs the server as
a `pgserver` system user it creates. The data directory persists, so a second
start reuses the same database.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.db.errors import ConnectError


@dataclass
class EmbeddedServer:
    url: str
    pgdata: Path
    _handle: Any

    def stop(self) -> None:
        """Stop the server if this process started it (pgserver counts handles)."""
        self._handle.cleanup()


def start(data_dir: Path) -> EmbeddedServer:
    """Start (or attach to) the embedded server whose data lives in `data_dir/pgdata`."""
    with warnings.catch_warnings():
        # platformdirs warns about an unset XDG_RUNTIME_DIR on import; harmless here.
        warnings.simplefilter("ignore")
        try:
            import pgserver
        except ImportError as exc:
            raise ConnectError(
                "No POSTGRES_URI is set and the embedded server is not installed "
                "(pip install 'opendot[embedded]')."
            ) from exc
        data_dir = data_dir.expanduser().resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = data_dir / "pgdata"
        try:
            handle = pgserver.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise ConnectError(
                f"The embedded PostgreSQL under {pgdata} did not start ({exc}); "
                f"see {pgdata / 'log'}."
            ) from exc
        url = handle.get_uri("postgres")
    return EmbeddedServer(url=url, pgdata=pgdata, _handle=handle)
