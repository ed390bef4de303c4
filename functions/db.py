"""The connection pool and the per-request transaction.

One lazily created asyncpg pool per process (per event loop), reused across warm
Lambda invocations (Mangum keeps one loop). Behind Supabase's transaction
pooler prepared statements cannot be cached, so `statement_cache_size=0` then.

Every request runs in ONE transaction. User requests switch to the
`authenticated` role with the verified claims, so RLS decides what the request
may see; internal (runtime) requests switch to `service_role`. The switch is
sent with BEGIN as one message (one round trip, also behind the pooler), and
both settings are transaction-local, which is why releasing a connection
needs no reset query.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from functions.errors import ApiError, Unavailable
from functions.settings import ApiSettings
from shared.db.api_role import login_problems

log = logging.getLogger("opendot.api.db")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset query (one round trip per request).

    That query (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`)
    undoes session state, and this API never makes any: the role and the
    claims are `set local` (they end with the transaction), there are no
    session advisory locks, cursors outside a transaction or LISTENs on this
    pool. An open transaction is still rolled back by the pool before this runs.
    """


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


class Database:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self._pool: asyncpg.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    async def pool(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is loop:
            return self._pool
        if self._lock is None or self._loop is not loop:
            # A pool belongs to the loop that made it (tests run several loops).
            self._lock = asyncio.Lock()
            self._pool = None
            self._loop = loop
        async with self._lock:
            if self._pool is None:
                self._pool = await self._create()
        return self._pool

    async def _create(self) -> asyncpg.Pool:
        url = self.settings.postgres_uri
        if not url:
            raise Unavailable("POSTGRES_URI is not configured.")
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=0,
                max_size=self.settings.db_pool_max,
                statement_cache_size=0 if self.settings.uses_transaction_pooler else 100,
                # Lambda freezes idle environments; do not trust sockets for long.
                max_inactive_connection_lifetime=60.0,
                init=_init_connection,
                reset=_keep_session,
                timeout=10.0,
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise Unavailable("The database is not reachable right now.") from exc
        assert pool is not None
        if self.settings.env == "production":
            try:
                refusal = await check_login(pool)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                await pool.close()
                raise Unavailable("The database is not reachable right now.") from exc
            if refusal is not None:
                await pool.close()
                log.error("%s", refusal)
                raise Unavailable(refusal)
        return pool

    async def ping(self) -> None:
        """One round trip (`/health`): the pool, the login and the server all answer."""
        async with self.transaction() as conn:
            await conn.fetchval("select 1")

    async def close(self) -> None:
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            await self._pool.close()
        self._pool = None

    @asynccontextmanager
    async def transaction(
        self, setup: str = "", *, refused: ApiError | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside one transaction, opened in one round trip.

        `setup` is one parameterless `select` sent in the same simple-protocol
        message as `BEGIN` (see `functions.sql_text`), typically switching role
        and claims. With `refused`, the setup must return exactly one row; any
        other answer raises `refused` (the setup puts its precondition in a
        WHERE clause). Commits on success and on an `ApiError` raised with
        `commit=True`; rolls back on anything else.

        The transaction is managed here, not by asyncpg's `Transaction`, so
        inside it `conn.transaction()` refuses to run: use SAVEPOINT statements.
        """
        pool = await self.pool()
        try:
            conn = await pool.acquire()
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise Unavailable("The database is not reachable right now.") from exc
        try:
            try:
                status = await conn.execute(f"begin; {setup}" if setup else "begin")
                if refused is not None and status != "SELECT 1":
                    raise refused
                yield conn
            except ApiError as exc:
                await conn.execute("commit" if exc.commit else "rollback")
                raise
            except BaseException:
                if not conn.is_closed() and conn.is_in_transaction():
                    await conn.execute("rollback")
                raise
            else:
                await conn.execute("commit")
        finally:
            await pool.release(conn)


async def check_login(pool: asyncpg.Pool) -> str | None:
    """None when the pool's login cannot get around RLS; else the sentence refusing it.

    Production only (on a laptop the embedded server's superuser is fine): the
    API must not be able to do more than the roles it switches to, or a bug
    in one handler would be a bug in every tenant's isolation.
    """
    async with pool.acquire() as conn:
        problems = await login_problems(conn)
    if not problems:
        return None
    return (
        "The API refuses to run in production with a database login that can bypass"
        f" row-level security ({'; '.join(problems)}). Connect as the opendot_api role"
        " that `opendot db migrate` creates (docs/deploy.md)."
    )


@asynccontextmanager
async def savepoint(conn: asyncpg.Connection, name: str) -> AsyncIterator[None]:
    """A step that may fail without aborting the request's transaction.

    On an exception the step's writes are rolled back and the exception goes
    on (the caller decides what it means); otherwise the savepoint is released.
    """
    await conn.execute(f"savepoint {name}")
    try:
        yield
    except BaseException:
        if not conn.is_closed() and conn.is_in_transaction():
            await conn.execute(f"rollback to savepoint {name}")
        raise
    await conn.execute(f"release savepoint {name}")


SERVICE_SETUP = (
    "select set_config('request.jwt.claims', '{\"role\":\"service_role\"}', true),"
    " set_config('role', 'service_role', true)"
)


async def act_as_user(conn: asyncpg.Connection, claims: dict[str, Any]) -> None:
    """Drop to `authenticated` with these claims for the rest of the transaction."""
    await conn.execute(
        "select set_config('request.jwt.claims', $1, true),"
        " set_config('role', 'authenticated', true)",
        json.dumps(claims),
    )
