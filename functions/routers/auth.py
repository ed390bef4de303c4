"""Local email/password auth with short-lived session JWTs, refresh and real logout."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

import asyncpg
from fastapi import APIRouter, Request

from functions.deps import (
    BearerIdentity,
    ServiceDb,
    SettingsDep,
    UserDb,
    bearer_token,
    client_ip,
    services,
)
from functions.errors import BadRequest, Forbidden, TooManyRequests, Unauthorized
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
_INVALID = "Invalid email or password."


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
    jti = await conn.fetchval(
        "select private.local_session_open($1, $2, $3, $4, $5)",
        uuid.UUID(user_id),
        token_hash(refresh),
        int(settings.session_max_age_s),
        request.headers.get("user-agent", ""),
        client_ip(request),
    )
    return str(jti), refresh


@router.post("/signup", status_code=201, response_model=AuthSession)
async def signup(
    body: SignupBody, request: Request, settings: SettingsDep, conn: ServiceDb
) -> AuthSession:
    _require_local(settings)
    email = body.email.strip()
    normalized = normalize_email(email)
    if not valid_email(normalized):
        raise BadRequest("A valid email address is required.")
    if len(body.password) < MIN_PASSWORD_CHARS:
        raise BadRequest(f"Password must be at least {MIN_PASSWORD_CHARS} characters.")
    name = (body.display_name or "").strip() or normalized.split("@", 1)[0]
    password_hash = await hash_password_async(body.password)
    user_id = await conn.fetchval(
        "select private.local_signup($1, $2, $3, $4)", email, normalized, password_hash, name[:200]
    )
    jti, refresh = await _open_session(conn, request, settings, str(user_id))
    return _session(
        request,
        user_id=str(user_id),
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
    _require_local(settings)
    normalized = normalize_email(body.email)
    address = client_ip(request) or "unknown"
    limit = settings.login_max_failures
    subject = normalized[:320] or "-"
    by_email = await conn.fetchval(
        "select private.throttle_failures('login_email', $1, $2)", subject, _WINDOW_S
    )
    by_address = await conn.fetchval(
        "select private.throttle_failures('login_address', $1, $2)", address, _WINDOW_S
    )
    if by_email >= limit or by_address >= 4 * limit:
        raise TooManyRequests(
            "Too many failed sign-in attempts. Try again in a few minutes.", retry_after_s=_WINDOW_S
        )
    row = await conn.fetchrow("select * from private.local_login_lookup($1)", normalized)
    ok = await verify_password_async(row["password_hash"] if row else None, body.password)
    if not ok or row is None:
        await conn.execute(
            "select private.throttle_record('login_email', $1, false),"
            " private.throttle_record('login_address', $2, false)",
            normalized[:320] or "-",
            address,
        )
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
    row = await ctx.conn.fetchrow(
        "select id, auth_provider, email, display_name, avatar_url from public.app_users"
        " where id = $1",
        uuid.UUID(ctx.user_id),
    )
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
    """A new access token: by refresh token (rotated), or by a still-valid session JWT."""
    _require_local(settings)
    new_refresh = _new_refresh_token()
    if body is not None and body.refresh_token:
        row = await conn.fetchrow(
            "select * from private.local_session_refresh($1, $2)",
            token_hash(body.refresh_token),
            token_hash(new_refresh),
        )
        if row is None:
            raise Unauthorized("This session has been signed out or has expired.")
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
    alive = await conn.fetchval(
        "select private.local_session_touch($1, $2)",
        uuid.UUID(identity.session_id),
        token_hash(new_refresh),
    )
    if not alive:
        raise Unauthorized("This session has been signed out or has expired.")
    user = await conn.fetchrow(
        "select email, display_name, avatar_url from public.app_users where id = $1",
        uuid.UUID(identity.user_id),
    )
    if user is None:
        raise Unauthorized("This session has been signed out or has expired.")
    return _session(
        request,
        user_id=identity.user_id,
        email=user["email"],
        name=user["display_name"],
        avatar=user["avatar_url"],
        jti=identity.session_id,
        refresh=new_refresh,
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
        await conn.execute(
            "select private.local_session_revoke($1)", uuid.UUID(identity.session_id)
        )
    return Ok()
