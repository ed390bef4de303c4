"""`opendot db migrate`: bootstrap (plain PostgreSQL only) and apply pending migrations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.db.api_role import ensure_api_role_at
from shared.db.commands.target import add_url_argument, resolve_url
from shared.db.connection import parse_target, redact
from shared.db.errors import DatabaseError, MissingDatabase
from shared.db.migrate import migrate
from shared.db.settings import DbSettings


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
    settings = DbSettings()
    role = settings.api_db_role
    password = settings.api_db_password.get_secret_value() if settings.api_db_password else None
    try:
        with resolve_url(args) as url:
            applied = migrate(
                url,
                migrations_dir=args.migrations_dir,
                bootstrap=args.bootstrap,
                create=args.create,
            )
            where = parse_target(url).describe()
            role_exists, problems = ensure_api_role_at(url, role, password or None)
    except DatabaseError as exc:
        advice = " Use --create to create it." if isinstance(exc, MissingDatabase) else ""
        print(f"opendot db migrate: {exc}{advice}", file=sys.stderr)
        return 1
    if applied:
        print(f"Applied {len(applied)} migration(s) to the {where}: {', '.join(applied)}")
    else:
        print(f"The {where} is up to date ({redact(url)}).")
    return _report_role(role, role_exists, problems, created=bool(password))


def _report_role(role: str, exists: bool, problems: list[str], *, created: bool) -> int:
    """Say what the API's production login looks like; 1 when it is unsafe."""
    if problems:
        print(
            f"opendot db migrate: the API login role {role} is not safe: "
            + "; ".join(problems)
            + ". Fix it (as a superuser where needed) before the API uses it.",
            file=sys.stderr,
        )
        return 1
    if exists:
        verb = "is ready" if created else "checked"
        print(
            f"API login role {role} {verb}: LOGIN NOINHERIT, member of authenticated and"
            " service_role only (use it in the API's POSTGRES_URI in production)."
        )
    else:
        print(
            f"No API login role {role} yet: set OPENDOT_API_DB_PASSWORD and run this again"
            " to create it (docs/deploy.md)."
        )
    return 0
