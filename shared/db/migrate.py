"""Apply `supabase/migrations/*.sql` and record them like the Supabase CLI does.

The ledger is `supabase_migrations.schema_migrations(version text primary key,
statements text[], name text)`, the table `supabase migration up` writes, so a
database migrated here and one migrated by the CLI agree on what is applied.
Each migration runs in its own transaction together with its ledger row: a
failing migration leaves neither a partial schema nor a ledger entry.

On plain PostgreSQL the bootstrap (`bootstrap.sql`: roles, `auth`,
`extensions`, search_path) runs first, every time, because it is idempotent and
because per-database settings are not copied by `CREATE DATABASE ... TEMPLATE`.
On Supabase it never runs.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

from shared.db.connection import connect, create_database_if_missing
from shared.db.errors import MigrationError

_FILE_PATTERN = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9_\-]+)\.sql$")
# Any constant works; it only has to be the same for every `opendot db migrate`.
_LOCK_KEY = 0x0DD07_DB
_BOOTSTRAP_MARK = "OpenDot plain-PostgreSQL stand-in"

_LEDGER_DDL = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text primary key,
  statements text[],
  name text
);
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Status:
    """What `opendot db status` shows."""

    flavour: str  # "supabase" or "plain"
    bootstrapped: bool
    applied: list[tuple[str, str]]  # (version, name) in the ledger
    pending: list[Migration]
    unknown: list[str]  # ledger versions with no file here (applied elsewhere)


def default_migrations_dir() -> Path:
    """`supabase/migrations` of the source tree this package belongs to."""
    return Path(__file__).resolve().parents[2] / "supabase" / "migrations"


def bootstrap_sql() -> str:
    return resources.files("shared.db").joinpath("bootstrap.sql").read_text(encoding="utf-8")


def load_migrations(migrations_dir: Path | None = None) -> list[Migration]:
    """Migration files in version order; a misnamed .sql file is an error, not a skip."""
    directory = migrations_dir or default_migrations_dir()
    if not directory.is_dir():
        raise MigrationError(f"The migrations directory {directory} does not exist.")
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name} is not named <14-digit version>_<name>.sql, so it cannot be ordered."
            )
        found.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in found]
    duplicates = sorted({v for v in versions if versions.count(v) > 1})
    if duplicates:
        raise MigrationError(f"Two migration files share version {duplicates[0]}.")
    return found


async def detect_flavour(conn: asyncpg.Connection) -> str:
    """'supabase' when Supabase's own objects exist, else 'plain'.

    `supabase_admin` exists on every Supabase database (hosted and CLI-local);
    an `auth` schema that our bootstrap did not create also means "not ours".
    """
    if await conn.fetchval("select 1 from pg_roles where rolname = 'supabase_admin'"):
        return "supabase"
    comment = await conn.fetchval(
        "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = 'auth'"
    )
    has_users = await conn.fetchval("select to_regclass('auth.users') is not null")
    if has_users and not (comment or "").startswith(_BOOTSTRAP_MARK):
        return "supabase"
    return "plain"


async def _is_bootstrapped(conn: asyncpg.Connection) -> bool:
    comment = await conn.fetchval(
        "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = 'auth'"
    )
    return bool(comment and comment.startswith(_BOOTSTRAP_MARK))


async def _applied(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    if not await conn.fetchval("select to_regclass('supabase_migrations.schema_migrations')"):
        return []
    rows = await conn.fetch(
        "select version, coalesce(name, '') as name"
        " from supabase_migrations.schema_migrations order by version"
    )
    return [(r["version"], r["name"]) for r in rows]


def _line_of(sql: str, position: str | None) -> str:
    if not position or not position.isdigit():
        return ""
    return f" at line {sql[: int(position)].count(chr(10)) + 1}"


async def _apply_bootstrap(conn: asyncpg.Connection) -> None:
    try:
        async with conn.transaction():
            await conn.execute(bootstrap_sql())
    except asyncpg.PostgresError as exc:
        where = _line_of(bootstrap_sql(), getattr(exc, "position", None))
        message = getattr(exc, "message", None) or str(exc)
        raise MigrationError(f"The plain-PostgreSQL bootstrap failed{where}: {message}.") from exc


async def _apply_one(conn: asyncpg.Connection, migration: Migration) -> None:
    sql = migration.sql
    try:
        async with conn.transaction():
            # The simple query protocol runs the whole file as one batch inside
            # this transaction; the ledger row joins the same transaction.
            await conn.execute(sql)
            await conn.execute(
                "insert into supabase_migrations.schema_migrations (version, statements, name)"
                " values ($1, $2, $3)",
                migration.version,
                [sql],
                migration.name,
            )
    except asyncpg.PostgresError as exc:
        where = _line_of(sql, getattr(exc, "position", None))
        message = getattr(exc, "message", None) or str(exc)
        raise MigrationError(
            f"Migration {migration.path.name} failed{where} and was rolled back: {message}."
        ) from exc


async def migrate_async(
    url: str,
    *,
    migrations_dir: Path | None = None,
    bootstrap: bool | None = None,
    create: bool = False,
) -> list[str]:
    """Bootstrap (plain PostgreSQL only) and apply pending migrations.

    `bootstrap=None` detects the flavour; True/False forces it. Returns the
    versions applied by this call, in order.
    """
    migrations = load_migrations(migrations_dir)
    if create:
        await create_database_if_missing(url)
    conn = await connect(url)
    try:
        # Serialise concurrent runners against the same database.
        await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
        try:
            if bootstrap is None:
                bootstrap = await detect_flavour(conn) == "plain"
            if bootstrap:
                await _apply_bootstrap(conn)
            await conn.execute(_LEDGER_DDL)
            done = {version for version, _ in await _applied(conn)}
            applied: list[str] = []
            for migration in migrations:
                if migration.version in done:
                    continue
                await _apply_one(conn, migration)
                applied.append(migration.version)
            return applied
        finally:
            await conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()


async def status_async(url: str, *, migrations_dir: Path | None = None) -> Status:
    migrations = load_migrations(migrations_dir)
    conn = await connect(url)
    try:
        flavour = await detect_flavour(conn)
        bootstrapped = await _is_bootstrapped(conn)
        applied = await _applied(conn)
    finally:
        await conn.close()
    done = {version for version, _ in applied}
    known = {m.version for m in migrations}
    return Status(
        flavour=flavour,
        bootstrapped=bootstrapped,
        applied=applied,
        pending=[m for m in migrations if m.version not in done],
        unknown=[version for version, _ in applied if version not in known],
    )


def migrate(
    url: str,
    *,
    migrations_dir: Path | None = None,
    bootstrap: bool | None = None,
    create: bool = False,
) -> list[str]:
    """Synchronous `migrate_async` for scripts, fixtures and the CLI."""
    return asyncio.run(
        migrate_async(url, migrations_dir=migrations_dir, bootstrap=bootstrap, create=create)
    )


def status(url: str, *, migrations_dir: Path | None = None) -> Status:
    """Synchronous `status_async`."""
    return asyncio.run(status_async(url, migrations_dir=migrations_dir))
