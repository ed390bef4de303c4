"""The checked-in OpenAPI document, and a property-based run against it (no 5xx)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from functions import openapi
from functions.app import create_app
from tests.conftest import TEST_TIME_UNIT
from tests.functions.conftest import internal_headers, make_settings

SCHEMA = schemathesis.openapi.from_dict(json.loads(openapi.PATH.read_text(encoding="utf-8")))


def test_checked_in_document_matches_the_app() -> None:
    assert openapi.PATH.read_text(encoding="utf-8") == openapi.render(), (
        "functions/openapi.json is stale: run `python -m functions.openapi`"
    )


async def test_document_is_served_async(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/platform-state" in paths and "/api/internal/runtime/records" in paths
    assert all("422" not in op["responses"] for item in paths.values() for op in item.values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server_url(database_url: str) -> Iterator[str]:
    """A real uvicorn server on loopback; the dev user makes user endpoints reachable."""
    app = create_app(make_settings(database_url, PLATFORM_AUTH_REQUIRED=False))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )

    async def serve() -> None:
        try:
            await server.serve()
        finally:
            await app.state.services.db.close()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10 * TEST_TIME_UNIT
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10 * TEST_TIME_UNIT)


@SCHEMA.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: schemathesis.Case, server_url: str) -> None:
    headers = internal_headers() if case.path.startswith("/api/internal/") else {}
    response = case.call(base_url=server_url, headers=headers, timeout=10 * TEST_TIME_UNIT)
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
        assert list(response.json()) == ["error"], response.text[:300]
