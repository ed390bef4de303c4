"""The provider HTTP core: retries before the first byte only, Retry-After, timeouts,
error mapping without secrets, and cancellation that closes the response."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from runtime.pipeline.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderTimeout,
    ProviderUnavailable,
)
from runtime.providers.http import (
    CallPolicy,
    parse_retry_after,
    read_all,
    shared_client,
    stream_body,
)

URL = "https://api.provider.example/v1/thing"
SECRET = "sk-live-abcdefghijklmnop"


class Sleeps:
    """Records backoff delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Body(httpx.AsyncByteStream):
    """A response body that can stall or fail after some pieces and records its closing."""

    def __init__(self, pieces: list[bytes], *, then: str = "end") -> None:
        self.pieces = pieces
        self.then = then
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
        if self.then == "stall":
            await asyncio.Event().wait()
        if self.then == "fail":
            raise httpx.ReadError("connection reset by peer")

    async def aclose(self) -> None:
        self.closed = True


def request() -> httpx.Request:
    client = shared_client(allow_private=False)
    return client.build_request("POST", URL, content=b"{}")


def policy(**kw: object) -> CallPolicy:
    values: dict[str, object] = {"provider": "prov", "secrets": (SECRET,)}
    values.update(kw)
    return CallPolicy(**values)  # type: ignore[arg-type]


@respx.mock
async def test_429_with_retry_after_then_success() -> None:
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}, json={"error": {"message": "slow"}}),
            httpx.Response(200, content=b"done"),
        ]
    )
    sleeps = Sleeps()
    body = await read_all(shared_client(allow_private=False), request(), policy(), sleep=sleeps)
    assert body == b"done"
    assert route.call_count == 2
    assert sleeps.delays == [2.0]  # Retry-After wins over the shorter backoff


@respx.mock
async def test_retry_after_beyond_the_cap_gives_up_with_the_hint() -> None:
    respx.post(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "120"}))
    with pytest.raises(ProviderUnavailable) as info:
        await read_all(shared_client(allow_private=False), request(), policy(), sleep=Sleeps())
    assert info.value.retry_after_s == 120.0


@respx.mock
async def test_5xx_retries_are_bounded_with_growing_backoff() -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(503))
    sleeps = Sleeps()
    with pytest.raises(ProviderUnavailable, match="HTTP 503"):
        await read_all(
            shared_client(allow_private=False), request(), policy(max_retries=3), sleep=sleeps
        )
    assert route.call_count == 4
    assert len(sleeps.delays) == 3
    # Full-jitter exponential: each delay lies within [ceiling/2, ceiling].
    for attempt, delay in enumerate(sleeps.delays):
        ceiling = min(0.25 * 2**attempt, 2.0)
        assert ceiling / 2 <= delay <= ceiling


@respx.mock
async def test_network_error_is_retried() -> None:
    route = respx.post(URL).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, content=b"ok")]
    )
    body = await read_all(shared_client(allow_private=False), request(), policy(), sleep=Sleeps())
    assert body == b"ok" and route.call_count == 2


@respx.mock
async def test_auth_error_is_not_retried_and_carries_no_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    route = respx.post(URL).mock(
        return_value=httpx.Response(
            401, json={"error": {"message": f"Incorrect API key provided: {SECRET}"}}
        )
    )
    with pytest.raises(ProviderAuthError) as info:
        await read_all(shared_client(allow_private=False), request(), policy(), sleep=Sleeps())
    assert route.call_count == 1
    assert "HTTP 401" in str(info.value)
    assert SECRET not in str(info.value)
    assert SECRET not in caplog.text


@respx.mock
async def test_bad_request_is_not_retried() -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(400, json={"error": "bad model"}))
    with pytest.raises(ProviderBadRequest, match="bad model"):
        await read_all(shared_client(allow_private=False), request(), policy(), sleep=Sleeps())
    assert route.call_count == 1


@respx.mock
async def test_first_byte_timeout(unit: float) -> None:
    calls: list[httpx.Request] = []

    async def never_answers(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    respx.post(URL).mock(side_effect=never_answers)
    with pytest.raises(ProviderTimeout, match="first-byte timeout"):
        await read_all(
            shared_client(allow_private=False),
            request(),
            policy(first_byte_timeout_s=0.05 * unit),
            sleep=Sleeps(),
        )
    assert len(calls) == 1  # a slow provider is replaced, not asked again


@respx.mock
async def test_mid_stream_failure_is_raised_not_retried() -> None:
    body = Body([b"first"], then="fail")
    route = respx.post(URL).mock(return_value=httpx.Response(200, stream=body))
    got: list[bytes] = []
    with pytest.raises(ProviderUnavailable, match="network error"):
        async for piece in stream_body(
            shared_client(allow_private=False), request(), policy(), sleep=Sleeps()
        ):
            got.append(piece)
    assert got == [b"first"]
    assert route.call_count == 1
    assert body.closed


@respx.mock
async def test_closing_the_generator_closes_the_response() -> None:
    body = Body([b"a", b"b"], then="stall")
    respx.post(URL).mock(return_value=httpx.Response(200, stream=body))
    gen = stream_body(shared_client(allow_private=False), request(), policy())
    assert await anext(gen) == b"a"
    assert not body.closed
    await gen.aclose()
    assert body.closed


@respx.mock
async def test_cancelling_the_consumer_closes_the_response(unit: float) -> None:
    body = Body([b"a"], then="stall")
    respx.post(URL).mock(return_value=httpx.Response(200, stream=body))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in stream_body(shared_client(allow_private=False), request(), policy()):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5 * unit)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert body.closed


@respx.mock
async def test_whole_call_timeout_after_first_byte(unit: float) -> None:
    body = Body([b"a"], then="stall")
    respx.post(URL).mock(return_value=httpx.Response(200, stream=body))
    got = []
    with pytest.raises(ProviderTimeout, match="exceeded"):
        async for piece in stream_body(
            shared_client(allow_private=False), request(), policy(timeout_s=0.1 * unit)
        ):
            got.append(piece)
    assert got == [b"a"] and body.closed


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


@respx.mock
async def test_bodies_are_asked_uncompressed_and_read_decoded_anyway() -> None:
    """A provider or proxy that gzips regardless must not feed gzip bytes to a parser."""
    import gzip

    body = b"data: " + b"x" * 4000 + b"\n\n"
    route = respx.post(URL).mock(
        return_value=httpx.Response(
            200, content=gzip.compress(body), headers={"Content-Encoding": "gzip"}
        )
    )
    assert await read_all(shared_client(allow_private=False), request(), policy()) == body
    assert route.calls.last.request.headers["accept-encoding"] == "identity"
    route.mock(
        return_value=httpx.Response(
            400,
            content=gzip.compress(b'{"error":{"message":"bad voice"}}'),
            headers={"Content-Encoding": "gzip"},
        )
    )
    with pytest.raises(ProviderBadRequest, match="bad voice"):
        await read_all(shared_client(allow_private=False), request(), policy())
