"""Local email/password auth with short-lived session JWTs, refresh and real logout."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import asyncpg
from fastapi import APIRouter, Request

from functions import accounts_store
from functions.client_address import limit_key
from functions.db import savepoint
from functions.deps import (
    BearerIdentity,
    ServiceDb,
    SettingsDep,
    UserDb,
    bearer_token,
    client_ip,
    services,
)
from functions.errors import BadRequest, Conflict, Forbidden, TooManyRequests, Unauthorized
from functions.models import (
    AuthConfig,
    AuthSession,
    LoginBody,
    Ok,
    PublicUser,
    RefreshBody,
    SessionInfo,
    SignupBody,
)
from functions.passwords import (
    MIN_PASSWORD_CHARS,
    hash_password_async,
    normalize_email,
    valid_email,
    verify_password_async,
)
from functions.settings import ApiSettings
from shared.tokens import token_hash

router = APIRouter(prefix="/api/auth", tags=["auth"])

_WINDOW_S = 15 * 60
_SIGNUP_WINDOW_S = 60 * 60
_INVALID = "Invalid email or password."
_SIGNED_OUT = "This session has been signed out or has expired."


def _require_local(settings: ApiSettings) -> None:
    if not settings.local_auth_enabled:
        raise Forbidden("Local email/password sign-in is disabled on this server.")


def _new_refresh_token() -> str:
    return "od_rt_" + secrets.token_urlsafe(32)


def _session(
    request: Request,
    *,
    user_id: str,
    email: str,
    name: str,
    avatar: str | None,
    jti: str,
    refresh: str | None,
) -> AuthSession:
    token, expires = services(request).verifier.issue_local(
        user_id=user_id, email=email, name=name, session_id=jti, picture=avatar
    )
    return AuthSession(
        access_token=token,
        refresh_token=refresh,
        expires_at=datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z"),
        user=PublicUser(
            id=user_id, auth_provider="local", email=email, display_name=name, avatar_url=avatar
        ),
    )


@router.get("/config", response_model=AuthConfig)
async def auth_config(settings: SettingsDep) -> AuthConfig:
    return AuthConfig(
        local_auth_enabled=settings.local_auth_enabled,
        supabase_configured=bool(settings.supabase_url),
    )


async def _open_session(
    conn: asyncpg.Connection, request: Request, settings: ApiSettings, user_id: str
) -> tuple[str, str]:
    refresh = _new_refresh_token()
    jti = await accounts_store.open_session(
        conn,
        user_id,
        token_hash(refresh),
        int(settings.session_max_age_s),
        request.headers.get("user-agent", ""),
        client_ip(request),
    )
    return jti, refresh


@router.post("/signup", status_code=201, response_model=AuthSession)
async def signup(
    body: SignupBody, request: Request, settings: SettingsDep, conn: ServiceDb
) -> AuthSession:
    """A new local account. Limited per client address, so accounts cannot be minted in
    bulk to multiply per-user limits (claims)."""
    _require_local(settings)
    email = body.email.strip()
    normalized = normalize_email(email)
    if not valid_email(normalized):
        raise BadRequest("A valid email address is required.")
    if len(body.password) < MIN_PASSWORD_CHARS:
        raise BadRequest(f"Password must be at least {MIN_PASSWORD_CHARS} characters.")
    address = limit_key(client_ip(request))
    if (
        await accounts_store.signups_from(conn, address, _SIGNUP_WINDOW_S)
        >= settings.signup_max_per_address
    ):
        raise TooManyRequests(
            "Too many accounts were created from your network recently. Try again later.",
            retry_after_s=_SIGNUP_WINDOW_S,
        )
    # Counted before the work: a refused duplicate costs a hash too.
    await accounts_store.record_signup(conn, address)
    name = (body.display_name or "").strip() or normalized.split("@", 1)[0]
    password_hash = await hash_password_async(body.password)
    try:
        async with savepoint(conn, "signup"):
            user_id = await accounts_store.create_local_user(
                conn, email, normalized, password_hash, name[:200]
            )
    except asyncpg.UniqueViolationError:
        raise Conflict("An account already exists for this email.", commit=True) from None
    jti, refresh = await _open_session(conn, request, settings, user_id)
    return _session(
        request,
        user_id=user_id,
        email=email,
        name=name[:200],
        avatar=None,
        jti=jti,
        refresh=refresh,
    )


@router.post("/login", response_model=AuthSession)
async def login(
    body: LoginBody, request: Request, settings: SettingsDep, conn: ServiceDb
) -> AuthSession:
    """Failed sign-ins are limited per (email, client address) first; per email across
    all addresses only at a much higher count, so a stranger's guesses from elsewhere
    do not lock the owner out; and per address across emails."""
    _require_local(settings)
    normalized = normalize_email(body.email)[:320] or "-"
    address = limit_key(client_ip(request))
    limit = settings.login_max_failures
    failures = await accounts_store.login_failures(conn, normalized, address, _WINDOW_S)
    if (
        failures.pair >= limit
        or failures.address >= 4 * limit
        or failures.email >= settings.login_max_failures_per_email
    ):
        raise TooManyRequests(
            "Too many failed sign-in attempts. Try again in a few minutes.", retry_after_s=_WINDOW_S
        )
    row = await accounts_store.login_lookup(conn, normalized)
    ok = await verify_password_async(row["password_hash"] if row else None, body.password)
    if not ok or row is None:
        await accounts_store.record_login_failure(conn, normalized, address)
        raise Unauthorized(_INVALID, commit=True)
    user_id = str(row["user_id"])
    jti, refresh = await _open_session(conn, request, settings, user_id)
    return _session(
        request,
        user_id=user_id,
        email=row["email"],
        name=row["display_name"],
        avatar=row["avatar_url"],
        jti=jti,
        refresh=refresh,
    )


@router.get("/session", response_model=SessionInfo)
async def session(request: Request, ctx: UserDb) -> SessionInfo:
    if ctx.identity.provider == "dev" and request.headers.get("authorization") is None:
        raise Unauthorized("An active session is required.")
    row = await accounts_store.user_row(ctx.conn, ctx.user_id)
    if row is None:
        raise Unauthorized("An active session is required.")
    return SessionInfo(
        user=PublicUser(
            id=str(row["id"]),
            auth_provider=row["auth_provider"],
            email=row["email"],
            display_name=row["display_name"],
            avatar_url=row["avatar_url"],
        )
    )


@router.post("/refresh", response_model=AuthSession)
async def refresh(
    request: Request,
    settings: SettingsDep,
    conn: ServiceDb,
    identity: BearerIdentity,
    body: RefreshBody | None = None,
) -> AuthSession:
    """A new access token.

    By refresh token: the token rotates (the answer carries the next one). A
    token that was already rotated away from means someone else holds this
    session's tokens, so the whole session is revoked (401): every access and
    refresh token it issued stops working, and the owner signs in again.

    By a still-valid access token alone: only a new access token, never a
    refresh token (`refreshToken` is null), so a stolen access token cannot be
    turned into a 30-day credential; the session's refresh token is unchanged.
    """
    _require_local(settings)
    if body is not None and body.refresh_token:
        new_refresh = _new_refresh_token()
        row = await accounts_store.refresh_session(
            conn, token_hash(body.refresh_token), token_hash(new_refresh)
        )
        if row["outcome"] == "reused":
            raise Unauthorized(
                "This refresh token was already used once, so the session has been signed"
                " out everywhere. Sign in again.",
                commit=True,
            )
        if row["outcome"] != "rotated":
            raise Unauthorized(_SIGNED_OUT)
        return _session(
            request,
            user_id=str(row["user_id"]),
            email=row["email"],
            name=row["display_name"],
            avatar=row["avatar_url"],
            jti=str(row["jti"]),
            refresh=new_refresh,
        )
    if identity is None or identity.provider != "local" or identity.session_id is None:
        raise Unauthorized("A refresh token or an active local session is required.")
    if not await accounts_store.session_alive(conn, identity.session_id):
        raise Unauthorized(_SIGNED_OUT)
    user = await accounts_store.user_row(conn, identity.user_id)
    if user is None:
        raise Unauthorized(_SIGNED_OUT)
    return _session(
        request,
        user_id=identity.user_id,
        email=user["email"],
        name=user["display_name"],
        avatar=user["avatar_url"],
        jti=identity.session_id,
        refresh=None,
    )


@router.post("/logout", response_model=Ok)
async def logout(request: Request, conn: ServiceDb) -> Ok:
    """Revokes the local session server-side; always answers ok (as the original)."""
    token = bearer_token(request)
    if token is None:
        return Ok()
    try:
        identity = await services(request).verifier.verify(token)
    except Unauthorized:
        return Ok()
    if identity.provider == "local" and identity.session_id:
        await accounts_store.revoke_session(conn, identity.session_id)
    return Ok()
