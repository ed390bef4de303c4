"""Schema behaviour pgTAP does not cover: cascades, derived owners, upserts as a user."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

Check = Callable[[asyncpg.Connection], Awaitable[Any]]


def run(url: str, check: Check) -> Any:
    """Run `check` in a transaction that is always rolled back."""

    async def go() -> Any:
        conn = await asyncpg.connect(url)
        try:
            tx = conn.transaction()
            await tx.start()
            try:
                return await check(conn)
            finally:
                await tx.rollback()
        finally:
            await conn.close()

    return asyncio.run(go())


async def make_user(conn: asyncpg.Connection) -> dict[str, uuid.UUID]:
    """One user with a bound device, a versioned agent and a recorded session."""
    ids: dict[str, uuid.UUID] = {}
    ids["user"] = await conn.fetchval(
        "insert into public.app_users (auth_provider, auth_subject) values ('local', $1)"
        " returning id",
        f"{uuid.uuid4()}@example.org",
    )
    ids["pipeline"] = await conn.fetchval(
        "insert into public.pipelines (user_id, slug, name) values ($1, 'p', 'P') returning id",
        ids["user"],
    )
    ids["pipeline_version"] = await conn.fetchval(
        "insert into public.pipeline_versions (pipeline_id, version_number) values ($1, 1)"
        " returning id",
        ids["pipeline"],
    )
    ids["agent"] = await conn.fetchval(
        "insert into public.agents (user_id, pipeline_id, slug, name) values ($1, $2, 'a', 'A')"
        " returning id",
        ids["user"],
        ids["pipeline"],
    )
    ids["agent_version"] = await conn.fetchval(
        "insert into public.agent_versions (agent_id, pipeline_version_id, version_number)"
        " values ($1, $2, 1) returning id",
        ids["agent"],
        ids["pipeline_version"],
    )
    ids["device"] = await conn.fetchval(
        "insert into public.devices (user_id, serial_number, display_name)"
        " values ($1, 'SN1', 'Dot') returning id",
        ids["user"],
    )
    await conn.execute("insert into public.device_state (device_id) values ($1)", ids["device"])
    ids["deployment"] = await conn.fetchval(
        "insert into public.deployments (user_id, agent_id, agent_version_id, pipeline_version_id)"
        " values ($1, $2, $3, $4) returning id",
        ids["user"],
        ids["agent"],
        ids["agent_version"],
        ids["pipeline_version"],
    )
    await conn.execute(
        "insert into public.deployment_device_targets (deployment_id, device_id) values ($1, $2)",
        ids["deployment"],
        ids["device"],
    )
    session = await conn.fetchval(
        "insert into public.voice_sessions (user_id, kind, agent_id, device_id)"
        " values ($1, 'device', $2, $3) returning id",
        ids["user"],
        ids["agent"],
        ids["device"],
    )
    turn = await conn.fetchval(
        "insert into public.voice_turns (session_id, turn_index, outcome)"
        " values ($1, 0, 'completed') returning id",
        session,
    )
    await conn.execute(
        "insert into public.voice_events (session_id, turn_id, kind) values ($1, $2, 'x')",
        session,
        turn,
    )
    return ids


async def as_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
    await conn.execute("set local role authenticated")
    await conn.execute(
        "select set_config('request.jwt.claims', $1, true)",
        json.dumps({"sub": str(user_id), "role": "authenticated"}),
    )


def test_deleting_an_account_removes_all_its_rows(database_url: str) -> None:
    async def check(conn: asyncpg.Connection) -> dict[str, int]:
        ids = await make_user(conn)
        # Deployments pin versions with NO ACTION keys: deleting a version on
        # its own is refused, deleting the whole account is not.
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            async with conn.transaction():
                await conn.execute(
                    "delete from public.agent_versions where id = $1", ids["agent_version"]
                )
        await conn.execute("delete from public.app_users where id = $1", ids["user"])
        tables = await conn.fetch(
            "select tablename from pg_tables where schemaname = 'public' order by 1"
        )
        counts = {}
        for row in tables:
            name = row["tablename"]
            counts[name] = await conn.fetchval(f'select count(*) from public."{name}"')  # noqa: S608
        return counts

    counts = run(database_url, check)
    assert {name: n for name, n in counts.items() if n} == {}


def test_device_rows_take_their_owner_from_the_device(database_url: str) -> None:
    async def check(conn: asyncpg.Connection) -> tuple[Any, Any]:
        ids = await make_user(conn)
        other = await make_user(conn)
        owner = await conn.fetchval(
            "select user_id from public.device_state where device_id = $1", ids["device"]
        )
        target_owner = await conn.fetchval(
            "select user_id from public.deployment_device_targets where device_id = $1",
            ids["device"],
        )
        assert owner == target_owner == ids["user"]
        # A row can never name one user and point at another's device.
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            async with conn.transaction():
                await conn.execute(
                    "update public.device_state set user_id = $1 where device_id = $2",
                    other["user"],
                    ids["device"],
                )
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            async with conn.transaction():
                await conn.execute(
                    "insert into public.deployment_device_targets"
                    " (deployment_id, device_id, status) values ($1, $2, 'superseded')",
                    other["deployment"],
                    ids["device"],
                )
        return owner, target_owner

    run(database_url, check)


def test_owner_upserts_a_secret_without_reading_it_back(database_url: str) -> None:
    async def check(conn: asyncpg.Connection) -> list[str]:
        ids = await make_user(conn)
        await as_user(conn, ids["user"])
        upsert = (
            "insert into public.user_secrets (user_id, name, ciphertext)"
            " values ((select auth.uid()), 'OPENAI_API_KEY', $1)"
            " on conflict (user_id, name) do update"
            # `excluded.ciphertext` would need SELECT on the column; the
            # parameter does not.
            " set ciphertext = $1, updated_at = now()"
            " returning id, name"
        )
        await conn.fetchrow(upsert, "sealed-1")
        await conn.fetchrow(upsert, "sealed-2")
        names = [r["name"] for r in await conn.fetch("select name from public.user_secrets")]
        await conn.execute("reset role")
        stored = await conn.fetchval(
            "select ciphertext from public.user_secrets where user_id = $1", ids["user"]
        )
        assert stored == "sealed-2"
        return names

    assert run(database_url, check) == ["OPENAI_API_KEY"]
