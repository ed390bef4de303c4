"""The API's production database login, and what makes a login unsafe for it.

The platform API authorises with RLS: every request transaction switches to
`authenticated` (with the caller's claims) or to `service_role` (internal
endpoints, sign-in). Whatever the login itself could do besides those two
switches is power RLS never sees. So in production the API connects as a
dedicated login, `opendot_api` by default, shaped like Supabase's own
`authenticator`: LOGIN, NOINHERIT (it holds nothing until it switches), no
SUPERUSER / BYPASSRLS / CREATEROLE, and a member of `authenticated` and
`service_role` only.

`opendot db migrate` creates that role (or brings an existing one to that
shape) when OPENDOT_API_DB_PASSWORD is set, and checks it either way; the API
refuses to run with OPENDOT_ENV=production when `login_problems` finds
anything (functions/db.py). Both use the one definition below.

The password never travels in clear: the role gets a SCRAM-SHA-256 verifier
computed here (what libpq's PQencryptPasswordConn sends), so it cannot land
in a server log.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re

import asyncpg

from shared.db.connection import connect
from shared.db.errors import MigrationError

DEFAULT_ROLE = "opendot_api"
GRANTED_ROLES = ("authenticated", "service_role")
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SCRAM_ITERATIONS = 4096

# Roles the login can become (SET ROLE needs membership, direct or through other
# roles) that are privileged: superuser, CREATEROLE (can grant itself anything),
# BYPASSRLS other than service_role (whose bypass the internal API needs and
# the API only uses for service flows), or owner of a table in public (owners
# are not subject to their table's RLS).
_PROBLEMS = """
with login as (
  select oid, rolname, rolsuper, rolbypassrls, rolcreaterole, rolinherit
  from pg_roles where rolname = $1
),
owners as (
  select distinct c.relowner from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public' and c.relkind in ('r', 'p')
)
select 0 as rank, format('%I is a superuser', l.rolname) as problem
from login l where l.rolsuper
union all
select 1, format('%I has BYPASSRLS', l.rolname) from login l where l.rolbypassrls
union all
select 1, format('%I can create roles (CREATEROLE), and so grant itself any role', l.rolname)
from login l where l.rolcreaterole
union all
select 1, format('%I owns tables in schema public, and owners are not held to their RLS',
                 l.rolname)
from login l where l.oid in (select relowner from owners)
union all
select 2, format('%I can SET ROLE %I, which %s', l.rolname, r.rolname,
  case when r.rolsuper then 'is a superuser'
       when r.rolcreaterole then 'can create roles'
       when r.rolbypassrls then 'has BYPASSRLS'
       else 'owns tables in schema public' end)
from login l
join pg_roles r on r.oid <> l.oid and pg_has_role(l.oid, r.oid, 'MEMBER')
where r.rolsuper or r.rolcreaterole
   or (r.rolbypassrls and r.rolname <> 'service_role')
   or r.oid in (select relowner from owners)
order by 1, 2
"""


async def login_problems(conn: asyncpg.Connection, role: str | None = None) -> list[str]:
    """How `role` (default: this connection's login) could get around RLS; [] when it cannot."""
    name = role or await conn.fetchval("select session_user")
    rows = await conn.fetch(_PROBLEMS, name)
    if rows and rows[0]["rank"] == 0:
        return [str(rows[0]["problem"])]  # a superuser can do anything; one reason is enough
    return [str(r["problem"]) for r in rows]


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677)."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, _SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _check_name(role: str) -> str:
    if not _ROLE_NAME.match(role):
        raise MigrationError(
            f"'{role}' is not a plain role name (lower-case letters, digits and _)."
        )
    return role


async def ensure_api_role(
    conn: asyncpg.Connection, role: str = DEFAULT_ROLE, password: str | None = None
) -> list[str]:
    """Create or update the API login (with a password), then check it.

    Without a password an existing role is only checked and a missing one is
    left alone. Returns the problems that remain (empty: safe). Only what a
    non-superuser migrator (Supabase's `postgres`) may change is changed:
    LOGIN, NOINHERIT, the password and the two grants; a role that has
    SUPERUSER or BYPASSRLS must be fixed by a superuser, and is reported.
    """
    name = _check_name(role)
    exists = await conn.fetchval("select 1 from pg_roles where rolname = $1", name)
    if password:
        verifier = scram_verifier(password)
        # The verifier is base64, digits, '$' and ':' only: safe inside quotes.
        attributes = f"login noinherit password '{verifier}'"
        verb = "alter" if exists else "create"
        await conn.execute(f'{verb} role "{name}" with {attributes}')
        for granted in GRANTED_ROLES:
            await conn.execute(f'grant "{granted}" to "{name}"')
    elif not exists:
        return []
    problems = await login_problems(conn, name)
    extra = await conn.fetch(
        "select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.roleid"
        " join pg_roles u on u.oid = m.member"
        " where u.rolname = $1 and not (r.rolname = any($2::text[])) order by 1",
        name,
        list(GRANTED_ROLES),
    )
    problems += [f"{name} is also a member of {r['rolname']}" for r in extra]
    shape = await conn.fetchrow(
        "select rolcanlogin, rolinherit from pg_roles where rolname = $1", name
    )
    if shape is not None and shape["rolinherit"]:
        problems.append(f"{name} is INHERIT; it must be NOINHERIT")
    if shape is not None and not shape["rolcanlogin"]:
        problems.append(f"{name} cannot log in")
    missing = [
        granted
        for granted in GRANTED_ROLES
        if not await conn.fetchval("select pg_has_role($1, $2, 'MEMBER')", name, granted)
    ]
    problems += [f"{name} is not a member of {granted}" for granted in missing]
    return sorted(set(problems))


async def _ensure_at(url: str, role: str, password: str | None) -> tuple[bool, list[str]]:
    conn = await connect(url)
    try:
        async with conn.transaction():
            problems = await ensure_api_role(conn, role, password)
        exists = bool(await conn.fetchval("select 1 from pg_roles where rolname = $1", role))
    except asyncpg.PostgresError as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise MigrationError(f"Could not set up the API login role {role}: {message}.") from exc
    finally:
        await conn.close()
    return exists, problems


def ensure_api_role_at(url: str, role: str, password: str | None) -> tuple[bool, list[str]]:
    """`ensure_api_role` on its own connection: (the role exists, its problems)."""
    return asyncio.run(_ensure_at(url, role, password))
