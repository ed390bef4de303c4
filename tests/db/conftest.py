"""Fixtures for the database tooling tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import create_database, drop_database, unique_database_name


@pytest.fixture
def empty_database_url(pg_server_url: str) -> Iterator[str]:
    """A brand-new, empty database (no bootstrap, no migrations)."""
    name = unique_database_name("db")
    url = create_database(pg_server_url, name)
    try:
        yield url
    finally:
        drop_database(pg_server_url, name)
