"""Request body limits (issue 11, item 9): 413 with a sentence, counted as bytes arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from functions.body_limit import DEFAULT_LIMIT, BodyLimit, limit_for
from tests.functions.conftest import internal_headers

SENTENCE = "The request body is too large: this endpoint accepts at most 256 KiB."


async def test_a_declared_oversize_body_is_refused_before_reading(
    client: httpx.AsyncClient,
) -> None:
    body = b'{"email": "' + b"a" * DEFAULT_LIMIT + b'", "password": "x"}'
    response = await client.post(
        "/api/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"error": SENTENCE}


async def test_a_streamed_body_is_counted_not_trusted(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "'
        for _ in range(40):
            yield b"a" * 8192
        yield b'", "password": "x"}'

    response = await client.post(
        "/api/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413 and response.json() == {"error": SENTENCE}


async def test_the_records_batch_has_a_larger_limit(client: httpx.AsyncClient) -> None:
    assert limit_for("/api/internal/runtime/records") == 8 * 1024 * 1024
    padding = "x" * (600 * 1024)
    response = await client.post(
        "/api/internal/runtime/records",
        json={"turns": [], "events": [], "padding": padding},
        headers=internal_headers(),
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("declared", [b"12", None])
async def test_a_body_longer_than_it_claimed_is_cut_off(declared: bytes | None) -> None:
    """Pure ASGI: the application never sees more than the limit, whatever the header says."""
    seen: list[int] = []

    async def app(scope: dict, receive: object, send: object) -> None:
        total = 0
        while True:
            message = await receive()  # type: ignore[operator]
            if message["type"] == "http.disconnect":
                break
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        seen.append(total)
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    chunk = b"x" * 65536
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for _ in range(5)]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"content-length", declared)] if declared else []
    scope = {"type": "http", "path": "/api/agents", "headers": headers}
    await BodyLimit(app)(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 413 and len(sent) == 2
    assert seen == [4 * 65536], "the app read up to the limit, then a disconnect"
