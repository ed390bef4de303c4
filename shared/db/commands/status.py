"""`opendot db status`: applied and pending migrations of one database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.db.commands.target import add_url_argument, resolve_url
from shared.db.connection import parse_target
from shared.db.errors import DatabaseError
from shared.db.migrate import status


def configure(parser: argparse.ArgumentParser) -> None:
    add_url_argument(parser)
    parser.add_argument("--migrations-dir", type=Path, default=None)


def run(args: argparse.Namespace) -> int:
    try:
        with resolve_url(args) as url:
            result = status(url, migrations_dir=args.migrations_dir)
            where = parse_target(url).describe()
    except DatabaseError as exc:
        print(f"opendot db status: {exc}", file=sys.stderr)
        return 1
    if result.flavour == "supabase":
        kind = "Supabase"
    else:
        state = "bootstrapped" if result.bootstrapped else "not bootstrapped"
        kind = f"plain PostgreSQL, {state}"
    print(f"{where} ({kind})")
    for version, name in result.applied:
        print(f"  applied  {version}  {name}")
    for migration in result.pending:
        print(f"  pending  {migration.version}  {migration.name}")
    for version in result.unknown:
        print(f"  unknown  {version}  (in the ledger, no file here)")
    print(f"{len(result.applied)} applied, {len(result.pending)} pending")
    return 0
