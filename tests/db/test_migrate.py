"""The migration runner against the real test cluster."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.db.errors import MigrationError
from shared.db.migrate import (
    bootstrap_sql,
    default_migrations_dir,
    detect_flavour,
    load_migrations,
    migrate,
    status,
)


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def ledger(url: str) -> list[tuple[str, str]]:
    rows = fetch(
        url, "select version, name from supabase_migrations.schema_migrations order by version"
    )
    return [(r["version"], r["name"]) for r in rows]


def test_ledger_lists_every_migration_file(database_url: str) -> None:
    files = load_migrations()
    assert files, "supabase/migrations must not be empty"
    assert ledger(database_url) == [(m.version, m.name) for m in files]
    statements = fetch(
        database_url,
        "select statements from supabase_migrations.schema_migrations where version = $1",
        files[0].version,
    )[0]["statements"]
    assert statements == [files[0].path.read_text(encoding="utf-8")]


def test_second_run_applies_nothing_and_keeps_the_ledger(database_url: str) -> None:
    before = ledger(database_url)
    assert migrate(database_url) == []
    assert ledger(database_url) == before
    result = status(database_url)
    assert result.flavour == "plain" and result.bootstrapped
    assert result.pending == [] and result.unknown == []


def test_fresh_database_gets_every_version_in_order(empty_database_url: str) -> None:
    applied = migrate(empty_database_url)
    assert applied == [m.version for m in load_migrations()]
    assert applied == sorted(applied)


def test_bootstrap_is_idempotent_and_reads_claims_like_supabase(empty_database_url: str) -> None:
    async def go() -> dict[str, Any]:
        conn = await asyncpg.connect(empty_database_url)
        try:
            for _ in range(2):
                async with conn.transaction():
                    await conn.execute(bootstrap_sql())
            roles = {
                r["rolname"]: r
                for r in await conn.fetch(
                    "select rolname, rolcanlogin, rolbypassrls from pg_roles"
                    " where rolname in ('anon','authenticated','service_role','authenticator')"
                )
            }
            sub = str(uuid.uuid4())
            claims = json.dumps({"sub": sub, "role": "authenticated", "email": "a@b.c"})
            async with conn.transaction():
                await conn.execute("set local role authenticated")
                await conn.execute("select set_config('request.jwt.claims', $1, true)", claims)
                inside = await conn.fetchrow(
                    "select auth.uid() as uid, auth.role() as role, auth.email() as email,"
                    " auth.jwt() ->> 'sub' as jwt_sub, current_user as who"
                )
            # After the transaction the GUC reads '' (not NULL): helpers must give NULL.
            after = await conn.fetchrow("select auth.uid() as uid, auth.jwt() as jwt")
            path = await conn.fetchval(
                "select array_to_string(setconfig, ',') from pg_db_role_setting s"
                " join pg_database d on d.oid = s.setdatabase"
                " where d.datname = current_database() and s.setrole = 0"
            )
            return {"roles": roles, "sub": sub, "inside": inside, "after": after, "path": path}
        finally:
            await conn.close()

    got = asyncio.run(go())
    roles = got["roles"]
    assert set(roles) == {"anon", "authenticated", "service_role", "authenticator"}
    assert roles["authenticator"]["rolcanlogin"] and not roles["anon"]["rolcanlogin"]
    assert roles["service_role"]["rolbypassrls"] and not roles["authenticated"]["rolbypassrls"]
    inside = got["inside"]
    assert str(inside["uid"]) == got["sub"] and inside["jwt_sub"] == got["sub"]
    assert (inside["role"], inside["email"], inside["who"]) == (
        "authenticated",
        "a@b.c",
        "authenticated",
    )
    assert got["after"]["uid"] is None and got["after"]["jwt"] is None
    assert "extensions" in got["path"]


def _copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), target)
    return target


def test_failing_migration_rolls_back_entirely(empty_database_url: str, tmp_path: Path) -> None:
    migrations = _copy_migrations(tmp_path)
    good = migrate(empty_database_url, migrations_dir=migrations)
    before = ledger(empty_database_url)
    (migrations / "29991231000000_broken.sql").write_text(
        "create table public.half_done (id int);\n"
        "insert into public.half_done values (1);\n"
        "select * from public.no_such_table;\n",
        encoding="utf-8",
    )
    with pytest.raises(MigrationError) as raised:
        migrate(empty_database_url, migrations_dir=migrations)
    message = str(raised.value)
    assert "29991231000000_broken.sql" in message and "line 3" in message
    assert "no_such_table" in message
    assert ledger(empty_database_url) == before
    assert len(before) == len(good)
    leftover = fetch(empty_database_url, "select to_regclass('public.half_done') as t")
    assert leftover[0]["t"] is None


def test_misnamed_migration_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "add_table.sql").write_text("select 1;", encoding="utf-8")
    with pytest.raises(MigrationError, match=r"add_table\.sql"):
        load_migrations(tmp_path)


def test_supabase_is_detected_and_never_bootstrapped(
    empty_database_url: str, tmp_path: Path
) -> None:
    # A Supabase-owned auth schema: it has users but not our bootstrap's marker.
    fetch(empty_database_url, "create schema auth")
    fetch(empty_database_url, "create table auth.users (id uuid primary key)")

    async def flavour() -> str:
        conn = await asyncpg.connect(empty_database_url)
        try:
            return await detect_flavour(conn)
        finally:
            await conn.close()

    assert asyncio.run(flavour()) == "supabase"
    migrations = tmp_path / "m"
    migrations.mkdir()
    (migrations / "20200101000000_one.sql").write_text(
        "create table public.one (id int);", encoding="utf-8"
    )
    assert migrate(empty_database_url, migrations_dir=migrations) == ["20200101000000"]
    comment = fetch(
        empty_database_url, "select obj_description('auth'::regnamespace, 'pg_namespace') as c"
    )
    assert comment[0]["c"] is None  # the bootstrap did not touch Supabase's schema
    assert status(empty_database_url, migrations_dir=migrations).flavour == "supabase"
