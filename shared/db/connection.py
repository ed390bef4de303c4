"""Connecting to PostgreSQL with errors a person can act on.

asyncpg reports an unreachable host, a wrong scheme or a server that speaks
another protocol with exceptions whose text ranges from helpful to cryptic;
here each becomes one `ConnectError` sentence naming the target (without its
password).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qs, urlsplit, urlunsplit

import asyncpg

from shared.db.errors import ConnectError, MissingDatabase

CONNECT_TIMEOUT_S = 10.0
_SCHEMES = ("postgresql", "postgres")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


@dataclass(frozen=True, slots=True)
class Target:
    """What a URL points at, for messages and safety checks."""

    host: str
    port: int
    database: str
    user: str

    @property
    def is_unix_socket(self) -> bool:
        return self.host.startswith("/")

    @property
    def is_local(self) -> bool:
        return self.is_unix_socket or self.host.lower() in _LOCAL_HOSTS

    def describe(self) -> str:
        where = self.host if self.is_unix_socket else f"{self.host}:{self.port}"
        return f"database '{self.database}' at {where}"


def _split(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        shown = parts.scheme or url[:40]
        raise ConnectError(
            f"'{shown}' is not a PostgreSQL URL; expected postgresql://user@host:port/database."
        )
    return parts


def parse_target(url: str) -> Target:
    """Host, port, database and user of a PostgreSQL URL (libpq defaults applied)."""
    parts = _split(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    try:
        port = int(query.get("port", [parts.port or 5432])[0])
    except ValueError as exc:
        raise ConnectError(f"The port in '{redact(url)}' is not a number.") from exc
    user = parts.username or "postgres"
    database = parts.path.lstrip("/") or user
    return Target(host=host, port=port, database=database, user=user)


def redact(url: str) -> str:
    """The URL with any password replaced, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = _split(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def connect(url: str, *, connect_timeout: float = CONNECT_TIMEOUT_S) -> asyncpg.Connection:
    """Open one connection or raise `ConnectError` with a single clear sentence."""
    target = parse_target(url)
    place = target.describe()
    try:
        # statement_cache_size=0: the same code runs behind Supabase's
        # transaction pooler, which cannot keep prepared statements.
        return await asyncpg.connect(url, timeout=connect_timeout, statement_cache_size=0)
    except asyncpg.InvalidCatalogNameError as exc:
        raise MissingDatabase(f"The {place} does not exist.") from exc
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise ConnectError(f"PostgreSQL refused user '{target.user}' for the {place}.") from exc
    except asyncpg.InvalidPasswordError as exc:
        raise ConnectError(f"PostgreSQL rejected the password for the {place}.") from exc
    except asyncpg.PostgresError as exc:
        raise ConnectError(f"PostgreSQL refused the connection to the {place}: {exc}.") from exc
    except TimeoutError as exc:
        raise ConnectError(
            f"No PostgreSQL answered at the {place} within {connect_timeout:g} s."
        ) from exc
    except socket.gaierror as exc:
        raise ConnectError(f"The host '{target.host}' cannot be resolved.") from exc
    except ConnectionRefusedError as exc:
        raise ConnectError(f"Nothing is listening for PostgreSQL at the {place}.") from exc
    except FileNotFoundError as exc:
        raise ConnectError(f"No PostgreSQL socket exists for the {place}.") from exc
    except OSError as exc:
        if not target.is_unix_socket and await _answers_like_postgres(target) is False:
            raise ConnectError(f"The server at the {place} is not PostgreSQL.") from exc
        raise ConnectError(f"Could not reach the {place}: {exc.strerror or exc}.") from exc
    except ValueError as exc:
        raise ConnectError(f"'{redact(url)}' is not a usable PostgreSQL URL: {exc}.") from exc
    except Exception as exc:  # a non-PostgreSQL server breaks the protocol in many ways
        raise ConnectError(
            f"The server at the {place} did not answer as PostgreSQL ({type(exc).__name__})."
        ) from exc


async def _answers_like_postgres(target: Target) -> bool | None:
    """Send PostgreSQL's SSLRequest; a PostgreSQL server answers exactly b"S" or b"N".

    None when nothing could be learnt (no connection, no answer in time).
    """
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port), timeout=3.0
        )
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(struct.pack("!ii", 8, 80877103))
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(1), timeout=3.0)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
    return answer in (b"S", b"N")


async def create_database_if_missing(url: str) -> bool:
    """Create the URL's database through the `postgres` maintenance database.

    Returns True when it was created.
    """
    target = parse_target(url)
    admin = await connect(with_database(url, "postgres"))
    try:
        exists = await admin.fetchval(
            "select 1 from pg_database where datname = $1", target.database
        )
        if exists:
            return False
        try:
            await admin.execute(f"create database {quote_ident(target.database)}")
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await admin.close()


def quote_ident(name: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'
