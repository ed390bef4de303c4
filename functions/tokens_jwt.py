"""Bearer verification: local session JWTs, Supabase JWTs (JWKS or legacy HS256).

Order (docs/protocols.md §1): a local session JWT when local auth is on; a Supabase JWT
through the project's JWKS (ES256/RS256 only, issuer and audience checked); the
legacy Supabase HS256 secret. Each path pins its algorithm list, so `alg:none`
and HS256-signed-with-a-public-key tokens never verify. Opaque `od_sk_` keys
are looked up in the database by `functions.deps`, not here.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt

from functions.errors import Unauthorized
from functions.jwks import ALLOWED_ALGORITHMS, JwksCache
from functions.settings import ApiSettings

SUPABASE_AUDIENCE = "authenticated"
_FAILED = "Bearer token verification failed."


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request acts for, after verification."""

    user_id: str
    provider: str  # local | supabase | api_key | dev
    email: str = ""
    display_name: str = ""
    avatar_url: str | None = None
    session_id: str | None = None  # local session jti
    api_key_id: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)

    def rls_claims(self) -> dict[str, Any]:
        """What `request.jwt.claims` holds for RLS: sub and role, plus the email."""
        return {"sub": self.user_id, "role": "authenticated", "email": self.email}


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def peek_header(token: str) -> dict[str, Any] | None:
    """The token's JOSE header, read only to choose how to verify it.

    `jwt.get_unverified_header` decodes and checks all three segments (PyJWT
    validates base64 character by character), which doubled the cost of a
    verification, since `jwt.decode` does the same again. Here only the header
    segment is decoded; `jwt.decode` then parses and checks the whole token,
    header included, with its own code and a pinned algorithm list, so a
    header this function misreads can only make verification fail.
    """
    head, dot, _ = token.partition(".")
    if not dot or len(head) > 2048:
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def supabase_display_name(claims: dict[str, Any]) -> str:
    raw_meta = claims.get("user_metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    for candidate in (meta.get("full_name"), meta.get("name"), claims.get("name")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    email = claims.get("email")
    return email if isinstance(email, str) and email else "OpenDot user"


class TokenVerifier:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.jwks: JwksCache | None = None
        if settings.supabase_url:
            self.jwks = JwksCache(
                f"{settings.supabase_url}/auth/v1/.well-known/jwks.json",
                ttl_s=settings.jwks_cache_s,
                timeout_s=settings.jwks_timeout_s,
                cooldown_s=settings.jwks_cooldown_s,
            )

    @property
    def supabase_issuer(self) -> str | None:
        url = self.settings.supabase_url
        return f"{url}/auth/v1" if url else None

    # --- local sessions ----------------------------------------------------------------

    def issue_local(
        self, *, user_id: str, email: str, name: str, session_id: str, picture: str | None = None
    ) -> tuple[str, float]:
        """A new local session JWT and its expiry (epoch seconds)."""
        now = int(time.time())
        expires = now + int(self.settings.session_ttl_s)
        claims: dict[str, Any] = {
            "sub": user_id,
            "auth_provider": "local",
            "email": email,
            "name": name,
            "role": "authenticated",
            "iss": self.settings.session_issuer,
            "aud": self.settings.session_audience,
            "iat": now,
            "exp": expires,
            "jti": session_id,
        }
        if picture:
            claims["picture"] = picture
        secret = self.settings.session_secret.get_secret_value()
        return jwt.encode(claims, secret, algorithm="HS256"), float(expires)

    def _local(self, token: str) -> Identity | None:
        try:
            claims = jwt.decode(
                token,
                self.settings.session_secret.get_secret_value(),
                algorithms=["HS256"],
                audience=self.settings.session_audience,
                issuer=self.settings.session_issuer,
                options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        if claims.get("auth_provider") != "local" or not _is_uuid(claims.get("sub")):
            return None
        return Identity(
            user_id=claims["sub"],
            provider="local",
            email=str(claims.get("email") or ""),
            display_name=str(claims.get("name") or ""),
            avatar_url=claims.get("picture") if isinstance(claims.get("picture"), str) else None,
            session_id=str(claims["jti"]),
            claims=claims,
        )

    # --- Supabase ------------------------------------------------------------------------

    def _supabase_identity(self, claims: dict[str, Any]) -> Identity:
        if not _is_uuid(claims.get("sub")):
            raise Unauthorized(_FAILED)
        raw_meta = claims.get("user_metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        avatar = meta.get("avatar_url")
        return Identity(
            user_id=claims["sub"],
            provider="supabase",
            email=str(claims.get("email") or ""),
            display_name=supabase_display_name(claims),
            avatar_url=avatar if isinstance(avatar, str) else None,
            claims=claims,
        )

    async def _supabase_jwks(self, token: str, header: dict[str, Any]) -> Identity | None:
        alg = header.get("alg")
        kid = header.get("kid")
        if self.jwks is None or alg not in ALLOWED_ALGORITHMS or not isinstance(kid, str):
            return None
        key = self.jwks.fresh(kid) or await self.jwks.get(kid)
        if key is None or key.algorithm != alg:
            return None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=SUPABASE_AUDIENCE,
                issuer=self.supabase_issuer,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        return self._supabase_identity(claims)

    def _supabase_legacy(self, token: str) -> Identity | None:
        secret = self.settings.supabase_jwt_secret
        if secret is None or not secret.get_secret_value():
            return None
        issuer = self.supabase_issuer
        try:
            claims = jwt.decode(
                token,
                secret.get_secret_value(),
                algorithms=["HS256"],
                audience=SUPABASE_AUDIENCE,
                issuer=issuer,
                options={"require": ["exp", "sub", "aud"], "verify_iss": issuer is not None},
            )
        except jwt.PyJWTError:
            return None
        return self._supabase_identity(claims)

    # --- entry point ---------------------------------------------------------------------

    async def verify(self, token: str) -> Identity:
        """The identity a JWT proves, or Unauthorized with one sentence."""
        header = peek_header(token)
        if header is None:
            raise Unauthorized(_FAILED)
        alg = header.get("alg")
        if alg == "HS256" and self.settings.local_auth_enabled:
            local = self._local(token)
            if local is not None:
                return local
        supabase = await self._supabase_jwks(token, header)
        if supabase is not None:
            return supabase
        if alg == "HS256":
            legacy = self._supabase_legacy(token)
            if legacy is not None:
                return legacy
        raise Unauthorized(_FAILED)
