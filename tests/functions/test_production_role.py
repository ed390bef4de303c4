"""The API's production database login (issue 11, item 11).

`opendot db migrate` creates a NOINHERIT login granted only `authenticated`
and `service_role`; the API refuses to run in production on a login that can
bypass RLS, and works end to end on the one migrate made. Roles are
cluster-wide, so each run uses its own role name and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.conftest import TEST_TIME_UNIT
from tests.functions.conftest import AppFactory, internal_headers, signup
from tests.functions.test_devices import _mac, bootstrap

PASSWORD = "api-role-password-for-tests"


def _opendot(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opendot.cli", *args],
        capture_output=True,
        text=True,
        timeout=120 * TEST_TIME_UNIT,
        check=False,
        env={**os.environ, **env},
    )


def _as(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:{PASSWORD}@{host}"))


@pytest.fixture(scope="module")
def role() -> Iterator[str]:
    yield f"opendot_api_t{os.getpid()}_{uuid.uuid4().hex[:6]}"


async def _drop(database_url: str, role: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where usename = $1", role
        )
        await conn.execute(f'drop role if exists "{role}"')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def migrated_role(database_url: str, role: str) -> Iterator[str]:
    done = _opendot(
        "db", "migrate", "--database-url", database_url,
        OPENDOT_API_DB_ROLE=role, OPENDOT_API_DB_PASSWORD=PASSWORD,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"API login role {role} is ready" in done.stdout
    yield role
    asyncio.run(_drop(database_url, role))


async def test_migrate_creates_a_noinherit_login_granted_only_the_two_roles(
    database_url: str, migrated_role: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        shape = await conn.fetchrow(
            "select rolcanlogin, rolinherit, rolsuper, rolbypassrls, rolcreaterole,"
            " rolpassword like 'SCRAM-SHA-256$%' as scram"
            " from pg_authid where rolname = $1",
            migrated_role,
        )
        granted = await conn.fetch(
            "select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.roleid"
            " join pg_roles u on u.oid = m.member where u.rolname = $1 order by 1",
            migrated_role,
        )
    finally:
        await conn.close()
    assert dict(shape) == {
        "rolcanlogin": True,
        "rolinherit": False,
        "rolsuper": False,
        "rolbypassrls": False,
        "rolcreaterole": False,
        "scram": True,
    }
    assert [r["rolname"] for r in granted] == ["authenticated", "service_role"]
    # Checked again on every migrate: an extra membership is reported, and fails.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'grant postgres to "{migrated_role}"')
        checked = _opendot(
            "db", "migrate", "--database-url", database_url, OPENDOT_API_DB_ROLE=migrated_role
        )
        await conn.execute(f'revoke postgres from "{migrated_role}"')
    finally:
        await conn.close()
    assert checked.returncode == 1
    assert f"{migrated_role} can SET ROLE postgres, which is a superuser" in checked.stderr


async def test_production_refuses_a_login_that_can_bypass_rls(
    make_client: AppFactory, database_url: str
) -> None:
    client = await make_client(OPENDOT_ENV="production")
    response = await client.get("/api/health")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error.startswith("The API refuses to run in production with a database login that")
    assert "is a superuser" in error and "opendot db migrate" in error
    refused = _opendot(
        "api", "--database-url", database_url,
        OPENDOT_ENV="production", PLATFORM_AUTH_REQUIRED="true",
        OPENDOT_RUNTIME_INTERNAL_SECRET="a-real-internal-secret-for-tests",
        OPENDOT_SESSION_SECRET="a-real-session-secret-for-tests",
    )  # fmt: skip
    assert refused.returncode == 2
    assert "refuses to run in production" in refused.stderr


async def test_production_works_end_to_end_on_the_api_role(
    make_client: AppFactory, database_url: str, migrated_role: str
) -> None:
    client = await make_client(
        OPENDOT_ENV="production", POSTGRES_URI=_as(database_url, migrated_role)
    )
    assert (await client.get("/api/health")).status_code == 200
    user = await signup(client)  # service_role flows
    state = await client.get(
        "/api/platform-state", headers={"Authorization": user["Authorization"]}
    )
    assert state.status_code == 200  # authenticated flows, RLS applied
    ota = await bootstrap(client, _mac())  # internal flows
    assert ota.status_code == 200 and "activation" in ota.json()
    assert internal_headers()
