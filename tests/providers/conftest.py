"""Shared fixtures for provider tests: a time unit, and closing the shared HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from runtime.providers.http import aclose_shared_clients
from tests.conftest import TEST_TIME_UNIT


@pytest.fixture
def unit() -> float:
    return TEST_TIME_UNIT


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    await aclose_shared_clients()
