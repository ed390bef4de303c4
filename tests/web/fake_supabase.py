"""A loopback fake of the Supabase Auth endpoints supabase-js calls (GoTrue's /auth/v1).

It signs ES256 access tokens with a key it publishes at
`/auth/v1/.well-known/jwks.json`, with the claims Supabase puts in them
(iss `<url>/auth/v1`, aud `authenticated`, sub, role, email, session_id), so
the platform API verifies them through JWKS exactly as it would a real
project's. Password sign-in, sign-up (auto-confirmed), refresh, the magic
link (PKCE: the "email" is kept in `outbox` for the test to open) and
sign-out. CORS is open: it is a test double on loopback.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.functions.jwt_helpers import SigningKey, es256_key
from tests.web.harness import free_port


@dataclass
class Account:
    id: str
    email: str
    password: str
    name: str


@dataclass
class FakeSupabase:
    url: str = ""
    key: SigningKey = field(default_factory=es256_key)
    accounts: dict[str, Account] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)
    outbox: list[dict[str, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def add(self, email: str, password: str, name: str = "Supa User") -> Account:
        account = Account(str(uuid.uuid4()), email, password, name)
        self.accounts[email] = account
        return account

    def _user(self, a: Account) -> dict[str, Any]:
        return {
            "id": a.id,
            "aud": "authenticated",
            "role": "authenticated",
            "email": a.email,
            "email_confirmed_at": "2026-01-01T00:00:00Z",
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {"full_name": a.name},
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }

    def session(self, a: Account) -> dict[str, Any]:
        now = int(time.time())
        token = self.key.sign(
            {
                "iss": f"{self.url}/auth/v1",
                "aud": "authenticated",
                "sub": a.id,
                "role": "authenticated",
                "email": a.email,
                "session_id": str(uuid.uuid4()),
                "iat": now,
                "exp": now + 3600,
                "user_metadata": {"full_name": a.name},
                "app_metadata": {"provider": "email"},
            }
        )
        refresh = secrets.token_urlsafe(16)
        self.refresh_tokens[refresh] = a.email
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": 3600,
            "expires_at": now + 3600,
            "refresh_token": refresh,
            "user": self._user(a),
        }

    def app(self) -> Starlette:
        def fail(status: int, message: str) -> JSONResponse:
            return JSONResponse(
                {"code": status, "error_code": "invalid_credentials", "msg": message},
                status_code=status,
            )

        async def jwks(_: Request) -> Response:
            return JSONResponse({"keys": [self.key.jwk()]})

        async def token(request: Request) -> Response:
            grant = request.query_params.get("grant_type")
            self.requests.append(f"token:{grant}")
            body = await request.json()
            if grant == "password":
                found = self.accounts.get(str(body.get("email", "")).lower())
                if found is None or found.password != body.get("password"):
                    return fail(400, "Invalid login credentials")
                return JSONResponse(self.session(found))
            if grant == "refresh_token":
                email = self.refresh_tokens.pop(str(body.get("refresh_token")), None)
                if email is None:
                    return fail(400, "Invalid Refresh Token")
                return JSONResponse(self.session(self.accounts[email]))
            if grant == "pkce":
                email = self.codes.pop(str(body.get("auth_code")), None)
                if email is None or not body.get("code_verifier"):
                    return fail(400, "Invalid auth code")
                return JSONResponse(self.session(self.accounts[email]))
            return fail(400, f"unsupported grant_type {grant}")

        async def signup(request: Request) -> Response:
            body = await request.json()
            email = str(body.get("email", "")).lower()
            if email in self.accounts:
                return fail(422, "User already registered")
            name = (body.get("data") or {}).get("full_name") or email
            return JSONResponse(self.session(self.add(email, str(body.get("password")), name)))

        async def otp(request: Request) -> Response:
            body = await request.json()
            email = str(body.get("email", "")).lower()
            if email not in self.accounts:
                self.add(email, secrets.token_hex(8), email)
            code = secrets.token_urlsafe(12)
            self.codes[code] = email
            redirect = request.query_params.get("redirect_to", "")
            self.outbox.append({"email": email, "link": f"{redirect}?code={code}"})
            return JSONResponse({})

        async def user(request: Request) -> Response:
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            try:
                claims = jwt.decode(
                    bearer, self.key.private.public_key(), ["ES256"], audience="authenticated"
                )
            except jwt.PyJWTError:
                return fail(401, "invalid JWT")
            return JSONResponse(self._user(self.accounts[claims["email"]]))

        async def logout(_: Request) -> Response:
            return Response(status_code=204)

        return Starlette(
            routes=[
                Route("/auth/v1/.well-known/jwks.json", jwks),
                Route("/auth/v1/token", token, methods=["POST"]),
                Route("/auth/v1/signup", signup, methods=["POST"]),
                Route("/auth/v1/otp", otp, methods=["POST"]),
                Route("/auth/v1/user", user),
                Route("/auth/v1/logout", logout, methods=["POST"]),
            ],
            middleware=[
                Middleware(
                    CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"]
                )
            ],
        )


class Running:
    """The fake on a loopback port, in a thread, until `stop()`."""

    def __init__(self, fake: FakeSupabase) -> None:
        port = free_port()
        fake.url = f"http://127.0.0.1:{port}"
        self.fake = fake
        config = uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
