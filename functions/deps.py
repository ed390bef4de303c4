"""Dependencies shared by the routers (Annotated aliases, one transaction per request).

`UserDb` verifies the bearer, opens the request's transaction, creates the user's
row on first sight, and switches to the `authenticated` role with the verified
claims, so RLS, not handler code, decides what the request can reach.
`InternalDb` checks the runtime's shared secret in constant time and switches
to `service_role`. `ServiceDb` (signup/login) is service_role without a user.

The transaction commits when the handler returns, and rolls back when it
raises, except for errors raised with `commit=True` (a failed claim attempt
must be recorded even though the answer is 404).
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from functions import keys_store
from functions.agent_cache import AgentContentCache
from functions.client_address import client_address
from functions.db import SERVICE_SETUP, Database, act_as_user
from functions.errors import Unauthorized
from functions.settings import ApiSettings
from functions.sql_text import LiteralError, literal, uuid_literal
from functions.tokens_jwt import Identity, TokenVerifier
from shared.firmware.storage import FirmwareStorage
from shared.tokens import API_KEY_PREFIX, token_hash

_BEARER = re.compile(r"^\s*bearer[ \t]+(\S+)\s*$", re.IGNORECASE)
_SIGNED_OUT = "This session has been signed out or has expired."


def user_setup(identity: Identity) -> str:
    """The statements that open a user's request (sent with BEGIN, see `sql_text`).

    `private.begin_request` checks a local session is still live and creates
    the user's row on first sight; only when it returns true does the row
    exist that sets the verified claims and switches to `authenticated`, so
    "SELECT 0" means a revoked or expired session. It runs as `service_role`:
    the API's production login (`opendot_api`, NOINHERIT) holds no privilege
    of its own, so every statement runs under a role it switched to.
    """
    try:
        args = ", ".join(
            (
                uuid_literal(identity.user_id),
                literal(identity.provider),
                literal(
                    identity.user_id if identity.provider != "local" else identity.email.lower()
                ),
                literal(identity.email),
                literal(identity.display_name),
                literal(identity.avatar_url),
                uuid_literal(identity.session_id),
            )
        )
        claims = literal(_claims_json(identity))
    except (LiteralError, ValueError) as exc:
        raise Unauthorized("Bearer token verification failed.") from exc
    return (
        "select set_config('role', 'service_role', true);"
        f" select set_config('request.jwt.claims', {claims}, true),"
        f" set_config('role', 'authenticated', true) where private.begin_request({args})"
    )


@dataclass(frozen=True, slots=True)
class Services:
    """What one app instance holds between requests (all safe to lose)."""

    settings: ApiSettings
    db: Database
    verifier: TokenVerifier
    agent_cache: AgentContentCache = field(default_factory=AgentContentCache)
    firmware: FirmwareStorage | None = None  # release files (shared/firmware/storage.py)


@dataclass(slots=True)
class Ctx:
    conn: asyncpg.Connection
    settings: ApiSettings
    identity: Identity
    client_ip: str
    user_agent: str

    @property
    def user_id(self) -> str:
        return self.identity.user_id


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def get_settings(request: Request) -> ApiSettings:
    return services(request).settings


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    match = _BEARER.match(header)
    return match.group(1) if match else None


def client_ip(request: Request) -> str:
    """The client address (`functions.client_address`), honouring OPENDOT_TRUSTED_PROXIES."""
    return client_address(request, services(request).settings.trusted_proxy_networks)


def _dev_identity(settings: ApiSettings) -> Identity:
    return Identity(
        user_id=settings.dev_user_id,
        provider="dev",
        email=settings.dev_user_email,
        display_name=settings.dev_user_name,
    )


async def _api_key_identity(conn: asyncpg.Connection, token: str) -> Identity:
    row = await keys_store.lookup_key(conn, token_hash(token))
    if row is None:
        raise Unauthorized("API key is not valid.")
    expires = row["expires_at"]
    if row["status"] != "active" or (expires is not None and expires.timestamp() <= time.time()):
        raise Unauthorized("API key is revoked or expired.")
    return Identity(user_id=str(row["user_id"]), provider="api_key", api_key_id=str(row["key_id"]))


async def _user_tx(request: Request) -> AsyncIterator[Ctx]:
    found = services(request)
    settings = found.settings
    token = bearer_token(request)
    identity: Identity | None = None
    if token is None:
        if settings.auth_required:
            raise Unauthorized("A bearer token is required.")
        identity = _dev_identity(settings)
    elif not token.startswith(API_KEY_PREFIX):
        identity = await found.verifier.verify(token)
    if identity is None:
        assert token is not None
        async with found.db.transaction(SERVICE_SETUP) as conn:
            identity = await _api_key_identity(conn, token)
            await act_as_user(conn, identity.rls_claims())
            yield Ctx(conn, settings, identity, client_ip(request), _user_agent(request))
        return
    setup = user_setup(identity)
    async with found.db.transaction(setup, refused=Unauthorized(_SIGNED_OUT)) as conn:
        yield Ctx(conn, settings, identity, client_ip(request), _user_agent(request))


def _claims_json(identity: Identity) -> str:
    return json.dumps(identity.rls_claims())


def _user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:512]


async def _internal_tx(request: Request) -> AsyncIterator[asyncpg.Connection]:
    found = services(request)
    expected = found.settings.runtime_internal_secret.get_secret_value().encode("utf-8")
    given = request.headers.get("x-opendot-runtime-secret", "").encode("utf-8")
    if not expected or not hmac.compare_digest(expected, given):
        raise Unauthorized("Runtime internal authentication failed.")
    async with found.db.transaction(SERVICE_SETUP) as conn:
        yield conn


async def _service_tx(request: Request) -> AsyncIterator[asyncpg.Connection]:
    async with services(request).db.transaction(SERVICE_SETUP) as conn:
        yield conn


async def _optional_identity(request: Request) -> Identity | None:
    """The verified bearer identity (no database), or None without a bearer."""
    token = bearer_token(request)
    if token is None or token.startswith(API_KEY_PREFIX):
        return None
    return await services(request).verifier.verify(token)


# scope="function": the transaction commits before the response is sent, so a
# client never sees 200 for a write that then fails to commit.
UserDb = Annotated[Ctx, Depends(_user_tx, scope="function")]
InternalDb = Annotated[asyncpg.Connection, Depends(_internal_tx, scope="function")]
ServiceDb = Annotated[asyncpg.Connection, Depends(_service_tx, scope="function")]
BearerIdentity = Annotated[Identity | None, Depends(_optional_identity)]
