"""Which database an `opendot db ...` command acts on.

`--database-url` wins, then `POSTGRES_URI`, then the embedded server under
`OPENDOT_DATA_DIR` (started for the duration of the command).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from shared.db import embedded
from shared.db.settings import DbSettings


def add_url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=None,
        help="PostgreSQL URL (default: POSTGRES_URI, else the embedded server in OPENDOT_DATA_DIR)",
    )


@contextmanager
def resolve_url(args: argparse.Namespace) -> Iterator[str]:
    if args.database_url:
        yield args.database_url
        return
    settings = DbSettings()
    if settings.postgres_uri:
        yield settings.postgres_uri
        return
    server = embedded.start(settings.data_dir)
    try:
        yield server.url
    finally:
        server.stop()
