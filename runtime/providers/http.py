"""HTTP for every cloud provider: one pooled client, timeouts, retries, error mapping.

- One `httpx.AsyncClient` per process (per event loop, since httpx connections
  belong to the loop that opened them) on the SSRF-guarded transport, with
  environment proxies and redirects off: a redirect or a proxy would otherwise
  move a request, and its Authorization header, somewhere nobody vetted.
- `stream_body` sends one request and yields the response body as it arrives.
  Until the first body byte it retries retryable failures (network errors,
  408/409/429/5xx, timeouts) with exponential backoff and full jitter, honouring
  `Retry-After`; after the first byte a failure is raised, never retried, since
  the caller has already acted on the output.
- Every failure leaves as a `runtime.pipeline.errors` exception whose text has
  been scrubbed of the call's secrets.
- Closing the generator (or cancelling its task) closes the response, which
  closes the connection of an unfinished stream.
- Bodies are asked for uncompressed (`Accept-Encoding: identity`: PCM and SSE
  gain nothing from gzip and every piece must be usable the moment it arrives)
  and read decoded all the same, so a proxy that compresses anyway cannot feed
  gzip bytes to the SSE parser or the PCM framer.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import re
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from runtime.pipeline.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from runtime.providers.netguard import GuardedTransport

log = logging.getLogger(__name__)

_ERROR_BODY_LIMIT = 4096
_KEYLIKE = re.compile(r"\b(sk|dg|gsk|sk-or-v1|sk-proj)[-_][A-Za-z0-9_\-*]{6,}")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class CallPolicy:
    """How one provider call is bounded and retried."""

    provider: str
    timeout_s: float = 30.0  # whole attempt, first byte to last
    first_byte_timeout_s: float = 8.0  # send -> first body byte
    connect_timeout_s: float = 5.0
    max_retries: int = 2
    backoff_base_s: float = 0.25
    backoff_cap_s: float = 2.0
    retry_after_cap_s: float = 10.0  # a longer Retry-After gives up instead of waiting
    # A slow provider is better replaced (fallback) than asked again mid-turn.
    retry_timeouts: bool = False
    # Values that must never appear in an exception or a log line.
    secrets: Sequence[str] = field(default=(), repr=False)

    def backoff(self, attempt: int, rand: Callable[[], float]) -> float:
        ceiling = min(self.backoff_base_s * (2**attempt), self.backoff_cap_s)
        return ceiling * (0.5 + rand() / 2)


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """For websockets, which logs every handshake header at DEBUG, Authorization included."""

    def __init__(self, logger: logging.Logger, secrets: Sequence[str]) -> None:
        super().__init__(logger, {})
        self._secrets = secrets

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            clean = tuple(redact(a, self._secrets) if isinstance(a, str) else a for a in args)
            super().log(level, msg, *clean, **kwargs)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _vendor_message(body: bytes) -> str:
    text = body[:_ERROR_BODY_LIMIT].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            for key in ("message", "err_msg", "detail", "reason"):
                if isinstance(err.get(key), str):
                    return str(err[key])[:200]
        if isinstance(err, str):
            return err[:200]
        for key in ("err_msg", "message", "detail", "reason"):
            if isinstance(data.get(key), str):
                return str(data[key])[:200]
    return " ".join(text.split())[:200]


def status_error(
    policy: CallPolicy, status: int, body: bytes, retry_after: str | None
) -> ProviderError:
    """The provider exception for an HTTP error status."""
    detail = redact(_vendor_message(body), policy.secrets)
    message = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status in (401, 403):
        return ProviderAuthError(policy.provider, message + " (check the provider key)")
    if status in (408, 409, 429) or status >= 500:
        return ProviderUnavailable(
            policy.provider, message, retry_after_s=parse_retry_after(retry_after)
        )
    return ProviderBadRequest(policy.provider, message)


def map_exception(policy: CallPolicy, exc: BaseException) -> ProviderError:
    """httpx / asyncio failures as provider errors (secrets scrubbed)."""
    if isinstance(exc, ProviderError):
        return exc
    text = redact(str(exc) or type(exc).__name__, policy.secrets)
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return ProviderTimeout(policy.provider, f"timed out ({text})")
    if isinstance(exc, (httpx.TransportError, OSError)):
        return ProviderUnavailable(policy.provider, f"network error ({text})")
    return ProviderUnavailable(policy.provider, f"unexpected failure ({text})")


# --- the shared client --------------------------------------------------------------

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[bool, httpx.AsyncClient]]
_clients = weakref.WeakKeyDictionary()


def shared_client(*, allow_private: bool) -> httpx.AsyncClient:
    """The process's provider client for the running loop and network policy."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get(allow_private)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            transport=GuardedTransport(allow_private=allow_private),
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": "OpenDot-runtime", "Accept-Encoding": "identity"},
        )
        per_loop[allow_private] = client
    return client


async def aclose_shared_clients() -> None:
    """Close the running loop's clients (runtime shutdown, test teardown)."""
    loop = asyncio.get_running_loop()
    for client in _clients.pop(loop, {}).values():
        await client.aclose()


# --- one streamed call ----------------------------------------------------------------


def _timeout(policy: CallPolicy) -> httpx.Timeout:
    return httpx.Timeout(
        connect=policy.connect_timeout_s,
        read=policy.timeout_s,
        write=policy.timeout_s,
        pool=policy.connect_timeout_s,
    )


async def _open(
    client: httpx.AsyncClient, request: httpx.Request, policy: CallPolicy
) -> tuple[httpx.Response, AsyncIterator[bytes], bytes]:
    """Send and wait for the first body byte, within the first-byte timeout."""
    request.extensions["timeout"] = _timeout(policy).as_dict()
    response: httpx.Response | None = None
    try:
        async with asyncio.timeout(min(policy.first_byte_timeout_s, policy.timeout_s)):
            response = await client.send(request, stream=True)
            if response.status_code >= 400:
                body = b""
                async for piece in response.aiter_bytes():
                    body += piece
                    if len(body) >= _ERROR_BODY_LIMIT:
                        break
                raise status_error(
                    policy, response.status_code, body, response.headers.get("retry-after")
                )
            chunks = response.aiter_bytes()
            first = b""
            while not first:
                try:
                    first = await anext(chunks)
                except StopAsyncIteration:
                    break
            return response, chunks, first
    except TimeoutError:
        if response is not None:
            await response.aclose()
        raise ProviderTimeout(
            policy.provider,
            f"no response within the first-byte timeout ({policy.first_byte_timeout_s:g} s)",
        ) from None
    except BaseException as exc:
        if response is not None:
            await response.aclose()
        if isinstance(exc, (asyncio.CancelledError, GeneratorExit)) or not isinstance(
            exc, Exception
        ):
            raise
        raise map_exception(policy, exc) from None


async def stream_body(
    client: httpx.AsyncClient,
    request: httpx.Request,
    policy: CallPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> AsyncGenerator[bytes, None]:
    """Yield the response body in pieces; retry only before the first byte."""
    attempt = 0
    while True:
        try:
            response, chunks, first = await _open(client, request, policy)
        except ProviderError as exc:
            if not exc.retryable or attempt >= policy.max_retries:
                raise
            if isinstance(exc, ProviderTimeout) and not policy.retry_timeouts:
                raise
            delay = policy.backoff(attempt, rand)
            if exc.retry_after_s is not None:
                if exc.retry_after_s > policy.retry_after_cap_s:
                    raise
                delay = max(delay, exc.retry_after_s)
            attempt += 1
            log.info(
                "%s: retry %d/%d in %.2f s after: %s",
                policy.provider,
                attempt,
                policy.max_retries,
                delay,
                exc,
            )
            await sleep(delay)
            continue
        break
    deadline = asyncio.get_running_loop().time() + policy.timeout_s
    try:
        if first:
            yield first
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise ProviderTimeout(
                    policy.provider, f"response exceeded the {policy.timeout_s:g} s limit"
                )
            try:
                async with asyncio.timeout(remaining):
                    piece = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise ProviderTimeout(
                    policy.provider, f"response exceeded the {policy.timeout_s:g} s limit"
                ) from None
            except ProviderError:
                raise
            except Exception as exc:
                raise map_exception(policy, exc) from None
            if piece:
                yield piece
    finally:
        # Cancellation or an early close lands here too; shield the close so a
        # second cancellation cannot leave the connection open.
        with contextlib.suppress(Exception):
            await asyncio.shield(response.aclose())


async def read_all(
    client: httpx.AsyncClient,
    request: httpx.Request,
    policy: CallPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
) -> bytes:
    """The whole body of a (non-streamed) call, under the same retry rules."""
    body = bytearray()
    gen = stream_body(client, request, policy, sleep=sleep)
    try:
        async for piece in gen:
            body += piece
    finally:
        await gen.aclose()
    return bytes(body)
