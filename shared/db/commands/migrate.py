"""`opendot db migrate`: bootstrap (plain PostgreSQL only) and apply pending migrations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.db.commands.target import add_url_argument, resolve_url
from shared.db.connection import parse_target, redact
from shared.db.errors import DatabaseError
from shared.db.migrate import migrate


def configure(parser: argparse.ArgumentParser) -> None:
    add_url_argument(parser)
    parser.add_argument(
        "--create", action="store_true", help="create the database first if it does not exist"
    )
    parser.add_argument(
        "--migrations-dir",
        type=Path,
        default=None,
        help="directory of <version>_<name>.sql files (default: supabase/migrations)",
    )
    flavour = parser.add_mutually_exclusive_group()
    flavour.add_argument(
        "--bootstrap",
        dest="bootstrap",
        action="store_const",
        const=True,
        default=None,
        help="apply the plain-PostgreSQL bootstrap even if Supabase is detected",
    )
    flavour.add_argument(
        "--no-bootstrap",
        dest="bootstrap",
        action="store_const",
        const=False,
        help="never apply the bootstrap (the target is Supabase)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        with resolve_url(args) as url:
            applied = migrate(
                url,
                migrations_dir=args.migrations_dir,
                bootstrap=args.bootstrap,
                create=args.create,
            )
            where = parse_target(url).describe()
    except DatabaseError as exc:
        print(f"opendot db migrate: {exc}", file=sys.stderr)
        return 1
    if applied:
        print(f"Applied {len(applied)} migration(s) to the {where}: {', '.join(applied)}")
    else:
        print(f"The {where} is up to date ({redact(url)}).")
    return 0
