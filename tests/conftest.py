"""Fixtures shared by the whole suite.

Database: one PostgreSQL 15 cluster (`scripts/test-postgres.sh`, or the URL in
OPENDOT_TEST_PG_URL). The migrations run ONCE per pytest session into a
template database; every test module gets its own clone made with
`CREATE DATABASE ... TEMPLATE ...` (tens of milliseconds), so modules never see
each other's rows and the suite stays fast as migrations grow. Names carry the
pid, so concurrent pytest runs on the same cluster do not collide, and
leftovers of killed runs are dropped at the next session start.

Time: every timeout in a test derives from TEST_TIME_UNIT (env
OPENDOT_TEST_TIME_UNIT, default 1.0 s), so a slow machine scales them at once.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from shared.db.connection import quote_ident, with_database
from shared.db.migrate import migrate

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_TIME_UNIT = float(os.environ.get("OPENDOT_TEST_TIME_UNIT", "1.0"))
_PREFIX = "opendot_t"
_NAME = re.compile(rf"^{_PREFIX}_(?:tpl|db)_(\d+)_[0-9a-f]+$")


@pytest.fixture(scope="session")
def time_unit() -> float:
    return TEST_TIME_UNIT


def _default_cluster_url() -> str:
    script = REPO_ROOT / "scripts" / "test-postgres.sh"
    return subprocess.run(
        [str(script), "url"], check=True, capture_output=True, text=True
    ).stdout.strip()


async def _admin_execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url, timeout=10 * TEST_TIME_UNIT)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _reachable(url: str) -> bool:
    try:
        await _admin_execute(url, "select 1")
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _drop_orphans(url: str) -> None:
    """Drop test databases left by pytest runs that were killed."""
    conn = await asyncpg.connect(url, timeout=10 * TEST_TIME_UNIT)
    try:
        names = [
            r["datname"]
            for r in await conn.fetch(
                "select datname from pg_database where datname like $1", f"{_PREFIX}_%"
            )
        ]
        for name in names:
            match = _NAME.match(name)
            if match and not _pid_alive(int(match[1])):
                await conn.execute(f"drop database if exists {quote_ident(name)} with (force)")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The test cluster's `postgres` database URL (superuser); started if needed."""
    url = os.environ.get("OPENDOT_TEST_PG_URL") or _default_cluster_url()
    if not asyncio.run(_reachable(url)):
        subprocess.run(
            [str(REPO_ROOT / "scripts" / "test-postgres.sh"), "start"],
            check=True,
            capture_output=True,
        )
        if not asyncio.run(_reachable(url)):
            pytest.fail(f"the test PostgreSQL at {url} is not reachable", pytrace=False)
    asyncio.run(_drop_orphans(url))
    return url


def unique_database_name(kind: str = "db") -> str:
    """A database name no other test or concurrent run uses."""
    return f"{_PREFIX}_{kind}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """Create a database on the test cluster and return its URL."""
    clause = f" template {quote_ident(template)}" if template else ""
    asyncio.run(_admin_execute(server_url, f"create database {quote_ident(name)}{clause}"))
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    asyncio.run(
        _admin_execute(server_url, f"drop database if exists {quote_ident(name)} with (force)")
    )


@pytest.fixture(scope="session")
def migrated_template(pg_server_url: str) -> Iterator[str]:
    """Name of a database migrated once per session, used only as a template."""
    name = unique_database_name("tpl")
    url = create_database(pg_server_url, name)
    try:
        migrate(url)
        yield name
    finally:
        drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def database_url(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """A freshly migrated database for this test module (a clone of the template)."""
    name = unique_database_name("db")
    url = create_database(pg_server_url, name, template=migrated_template)
    try:
        # Per-database settings (search_path) are not copied by TEMPLATE;
        # re-running migrate re-applies the idempotent bootstrap and nothing else.
        migrate(url)
        yield url
    finally:
        drop_database(pg_server_url, name)
