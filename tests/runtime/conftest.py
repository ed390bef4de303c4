"""Fixtures for runtime tests that run against the real platform API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from functions.app import create_app as create_api
from tests.functions.conftest import make_settings


@pytest.fixture
async def api_app(database_url: str) -> AsyncIterator[Any]:
    app = create_api(make_settings(database_url))
    yield app
    await app.state.services.db.close()


@pytest.fixture
async def api(api_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api_app, client=("192.0.2.50", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client
