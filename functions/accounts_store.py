"""Accounts in the database: local sign-up and sign-in, sessions, throttles, settings.

Every statement of the auth and settings routes lives here; the privileged
parts are `private.*` functions (20261125001000_auth_functions.sql). Sign-in
and sign-up run as `service_role` (there is no user yet); settings run as the
user, under RLS.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import asyncpg

from functions.models import UserSettings

# --- throttles ---------------------------------------------------------------------------


def pair_subject(email: str, address: str) -> str:
    """The `login_pair` subject: one (email, client address) pair, hashed to fixed length."""
    return hashlib.sha256(f"{email}\x00{address}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LoginFailures:
    pair: int
    email: int
    address: int


async def login_failures(
    conn: asyncpg.Connection, email: str, address: str, window_s: int
) -> LoginFailures:
    row = await conn.fetchrow(
        "select private.throttle_failures('login_pair', $1, $4) as pair,"
        " private.throttle_failures('login_email', $2, $4) as email,"
        " private.throttle_failures('login_address', $3, $4) as address",
        pair_subject(email, address),
        email,
        address,
        window_s,
    )
    assert row is not None
    return LoginFailures(pair=row["pair"], email=row["email"], address=row["address"])


async def record_login_failure(conn: asyncpg.Connection, email: str, address: str) -> None:
    await conn.execute(
        "select private.throttle_record('login_pair', $1, false),"
        " private.throttle_record('login_email', $2, false),"
        " private.throttle_record('login_address', $3, false)",
        pair_subject(email, address),
        email,
        address,
    )


async def signups_from(conn: asyncpg.Connection, address: str, window_s: int) -> int:
    count: int = await conn.fetchval(
        "select private.throttle_attempts('signup_address', $1, $2)", address, window_s
    )
    return count


async def record_signup(conn: asyncpg.Connection, address: str) -> None:
    await conn.execute("select private.throttle_record('signup_address', $1, false)", address)


# --- local accounts and sessions -----------------------------------------------------------


async def create_local_user(
    conn: asyncpg.Connection, email: str, normalized: str, password_hash: str, name: str
) -> str:
    """The new user's id; a duplicate email raises UniqueViolationError (answered as 409)."""
    user_id = await conn.fetchval(
        "select private.local_signup($1, $2, $3, $4)", email, normalized, password_hash, name
    )
    return str(user_id)


async def login_lookup(conn: asyncpg.Connection, normalized: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "select * from private.local_login_lookup($1)", normalized
    )
    return row


async def open_session(
    conn: asyncpg.Connection,
    user_id: str,
    refresh_hash: str,
    max_age_s: int,
    user_agent: str,
    address: str,
) -> str:
    jti = await conn.fetchval(
        "select private.local_session_open($1, $2, $3, $4, $5)",
        uuid.UUID(user_id),
        refresh_hash,
        max_age_s,
        user_agent,
        address,
    )
    return str(jti)


async def refresh_session(
    conn: asyncpg.Connection, refresh_hash: str, new_refresh_hash: str
) -> asyncpg.Record:
    """outcome rotated | reused | invalid, with the session and user on `rotated`."""
    row = await conn.fetchrow(
        "select * from private.local_session_refresh($1, $2)", refresh_hash, new_refresh_hash
    )
    assert row is not None
    return row


async def session_alive(conn: asyncpg.Connection, jti: str) -> bool:
    alive: bool = await conn.fetchval("select private.local_session_touch($1)", uuid.UUID(jti))
    return alive


async def revoke_session(conn: asyncpg.Connection, jti: str) -> None:
    await conn.execute("select private.local_session_revoke($1)", uuid.UUID(jti))


async def user_row(conn: asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    """id, provider, email, name and avatar of a user the connection may read."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "select id, auth_provider, email, display_name, avatar_url from public.app_users"
        " where id = $1",
        uuid.UUID(user_id),
    )
    return row


# --- the settings page -------------------------------------------------------------------

_SETTINGS = (
    "select u.display_name, u.email, coalesce(p.workspace_name, 'OpenDot Lab') as workspace_name,"
    " coalesce(p.timezone, 'UTC') as timezone, coalesce(p.compact_mode, false) as compact_mode"
    " from public.app_users u left join public.user_preferences p on p.user_id = u.id"
    " where u.id = $1"
)


async def read_settings(conn: asyncpg.Connection, user_id: str) -> UserSettings:
    row = await conn.fetchrow(_SETTINGS, uuid.UUID(user_id))
    if row is None:
        return UserSettings(
            display_name="",
            email="",
            workspace_name="OpenDot Lab",
            timezone="UTC",
            compact_mode=False,
        )
    return UserSettings(**dict(row))


async def update_profile(
    conn: asyncpg.Connection, user_id: str, display_name: str | None, email: str | None
) -> None:
    await conn.execute(
        "update public.app_users set display_name = coalesce($2, display_name),"
        " email = coalesce($3, email), updated_at = now() where id = $1",
        uuid.UUID(user_id),
        display_name,
        email,
    )


async def update_preferences(
    conn: asyncpg.Connection,
    user_id: str,
    workspace_name: str | None,
    timezone: str | None,
    compact_mode: bool | None,
) -> None:
    await conn.execute(
        "insert into public.user_preferences (user_id, workspace_name, timezone, compact_mode)"
        " values ($1, coalesce($2, 'OpenDot Lab'), coalesce($3, 'UTC'), coalesce($4, false))"
        " on conflict (user_id) do update set"
        " workspace_name = coalesce($2, user_preferences.workspace_name),"
        " timezone = coalesce($3, user_preferences.timezone),"
        " compact_mode = coalesce($4, user_preferences.compact_mode), updated_at = now()",
        uuid.UUID(user_id),
        workspace_name,
        timezone,
        compact_mode,
    )
