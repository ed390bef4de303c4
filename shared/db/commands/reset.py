"""`opendot db reset`: drop, re-create, migrate and seed a LOCAL database.

It refuses any URL whose host is not loopback or a unix socket: a reset
aimed at a hosted database by a stray POSTGRES_URI must be impossible.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from shared.db.commands.target import add_url_argument, resolve_url
from shared.db.connection import connect, parse_target, quote_ident, with_database
from shared.db.errors import DatabaseError, UnsafeTargetError
from shared.db.migrate import migrate
from shared.db.seed import apply_seed


def configure(parser: argparse.ArgumentParser) -> None:
    add_url_argument(parser)
    parser.add_argument("--migrations-dir", type=Path, default=None)
    parser.add_argument("--no-seed", action="store_true", help="do not apply supabase/seed.sql")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def check_local(url: str) -> None:
    """Raise `UnsafeTargetError` unless the URL points at this machine."""
    target = parse_target(url)
    if not target.is_local:
        raise UnsafeTargetError(
            f"Refusing to reset the {target.describe()}: reset only works on "
            "localhost, 127.0.0.1, ::1 or a unix socket."
        )
    if target.database in {"template0", "template1"}:
        raise UnsafeTargetError(f"Refusing to reset the template database '{target.database}'.")


async def recreate(url: str) -> None:
    target = parse_target(url)
    maintenance = "template1" if target.database == "postgres" else "postgres"
    admin = await connect(with_database(url, maintenance))
    try:
        name = quote_ident(target.database)
        await admin.execute(f"drop database if exists {name} with (force)")
        await admin.execute(f"create database {name}")
    finally:
        await admin.close()


def _confirmed(args: argparse.Namespace, where: str) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("opendot db reset: pass --yes to reset without a terminal.", file=sys.stderr)
        return False
    answer = input(f"Drop and re-create the {where}? [y/N] ")
    return answer.strip().lower() in {"y", "yes"}


def run(args: argparse.Namespace) -> int:
    try:
        with resolve_url(args) as url:
            check_local(url)
            where = parse_target(url).describe()
            if not _confirmed(args, where):
                return 1
            asyncio.run(recreate(url))
            applied = migrate(url, migrations_dir=args.migrations_dir)
            if not args.no_seed:
                apply_seed(url)
    except DatabaseError as exc:
        print(f"opendot db reset: {exc}", file=sys.stderr)
        return 1
    seeded = "" if args.no_seed else " and seeded"
    print(f"Reset the {where}: {len(applied)} migration(s) applied{seeded}.")
    return 0
