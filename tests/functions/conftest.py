"""Fixtures for the platform API: a real app on a freshly migrated database."""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from functions.app import create_app
from functions.settings import ApiSettings

_ADDRESSES = itertools.count(1)
INTERNAL_SECRET = "test-internal-secret-0123456789"
SECRETS_KEY = base64.b64encode(bytes(range(32))).decode()


def make_settings(database_url: str, **overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {
        "OPENDOT_ENV": "test",
        "POSTGRES_URI": database_url,
        "PLATFORM_AUTH_REQUIRED": True,
        "OPENDOT_RUNTIME_INTERNAL_SECRET": INTERNAL_SECRET,
        "OPENDOT_SECRETS_KEY": SECRETS_KEY,
        "OPENDOT_SESSION_SECRET": "test-session-secret-with-enough-length",
        "SUPABASE_URL": None,
        "SUPABASE_JWT_SECRET": None,
        "OPENDOT_CORS_ORIGINS": "http://console.test",
        "OPENDOT_LOCAL_AUTH_DISABLED": False,
        "OPENDOT_DB_POOL_MAX": 8,
    }
    values.update(overrides)
    return ApiSettings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str) -> ApiSettings:
    return make_settings(database_url)


AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def make_client(database_url: str) -> AsyncIterator[AppFactory]:
    """Build (settings overrides) -> client; every app's pool is closed afterwards."""
    apps: list[Any] = []
    clients: list[httpx.AsyncClient] = []

    async def factory(*, client_ip: str | None = None, **overrides: Any) -> httpx.AsyncClient:
        app = create_app(make_settings(database_url, **overrides))
        apps.append(app)
        # A distinct client address per app keeps per-address throttles apart.
        address = client_ip or f"198.51.{next(_ADDRESSES) // 250}.{next(_ADDRESSES) % 250}"
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 4711)),
            base_url="http://api.test",
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()
    for app in apps:
        await app.state.services.db.close()


@pytest.fixture
async def client(make_client: AppFactory) -> httpx.AsyncClient:
    return await make_client()


async def signup(client: httpx.AsyncClient, email: str | None = None) -> dict[str, str]:
    """A new local user; returns the auth headers plus id and email."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.test"
    response = await client.post(
        "/api/auth/signup", json={"email": email, "password": "correct horse battery"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return {
        "Authorization": f"Bearer {body['accessToken']}",
        "id": body["user"]["id"],
        "email": email,
        "refresh": body["refreshToken"],
    }


def auth(user: dict[str, str]) -> dict[str, str]:
    return {"Authorization": user["Authorization"]}


def internal_headers() -> dict[str, str]:
    return {"X-OpenDot-Runtime-Secret": INTERNAL_SECRET}
