"""One WebSocket to a Realtime provider, opened the way every provider call is.

- The host is resolved and checked by `netguard` before anything is sent, and
  the socket connects to the checked address itself (TLS still verifies the
  URL's host name), so a DNS answer that changes in between cannot reach a
  private address. Environment proxies are off for the same reason.
- One TLS context per process: building one per connection costs about a
  millisecond and ~100 KiB of CA store each time.
- Handshake refusals map like HTTP statuses (401/403 auth, 429/5xx retryable)
  and every message is scrubbed of the key; a retryable refusal is tried once
  more before the caller falls back.
- Counters (messages and bytes sent) feed the bench and the metrics.

Why not the `openai` SDK's `realtime.connect()`: it would connect to the host
name (no pinned, vetted address), parses each event into pydantic models
(93 us per audio delta against 25 us for `protocol.realtime`, measured), and an
`AsyncOpenAI` client with its connection manager holds ~1.3 MiB, five times a
session's memory budget. The SDK's models are still the schema the tests check
our events against.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from runtime.pipeline.errors import ProviderError, ProviderUnavailable
from runtime.protocol.realtime import MAX_EVENT_BYTES
from runtime.providers.http import (
    CallPolicy,
    RedactingLogger,
    map_exception,
    redact,
    status_error,
)
from runtime.providers.netguard import Resolver, vet_url
from runtime.realtime.target import PROVIDER, RealtimeTarget

log = logging.getLogger("opendot.runtime.realtime")

CONNECT_ATTEMPTS = 2


@functools.cache
def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class RealtimeConnection:
    """A connected socket: `send` text events, `recv` the provider's messages."""

    def __init__(self, ws: ClientConnection, target: RealtimeTarget) -> None:
        self._ws = ws
        self._secrets = target.secrets
        self.messages_sent = 0
        self.bytes_sent = 0

    async def send(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except ConnectionClosed as exc:
            raise self.closed_error(exc) from None
        self.messages_sent += 1
        self.bytes_sent += len(text)

    async def recv(self) -> str | bytes:
        """The next message; `ProviderUnavailable` when the provider closed the socket."""
        try:
            return await self._ws.recv()
        except ConnectionClosed as exc:
            raise self.closed_error(exc) from None

    def closed_error(self, exc: ConnectionClosed) -> ProviderError:
        frame = exc.rcvd
        code = frame.code if frame is not None else 1006
        reason = (frame.reason if frame is not None else "") or "no reason given"
        text = f"the provider closed the connection ({code}: {reason})"
        return ProviderUnavailable(PROVIDER, redact(text, self._secrets))

    async def close(self) -> None:
        await self._ws.close()


async def open_connection(
    target: RealtimeTarget, *, resolver: Resolver | None = None
) -> RealtimeConnection:
    """Vet, connect (one retry for a retryable refusal) and return the open socket."""
    url = target.ws_url
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    policy = CallPolicy(PROVIDER, secrets=target.secrets)
    addresses = await vet_url(
        target.base_url,
        allow_private=target.allow_private,
        provider=PROVIDER,
        what="realtime baseUrl",
        resolver=resolver,
    )
    kwargs: dict[str, Any] = {"host": addresses[0], "port": port}
    if parts.scheme == "wss":
        kwargs["server_hostname"] = host
        kwargs["ssl"] = tls_context()
    attempt = 0
    while True:
        try:
            ws = await connect(
                url,
                additional_headers=target.headers(),
                user_agent_header="OpenDot-runtime",
                proxy=None,
                compression=None,
                open_timeout=target.connect_timeout_s * 2,
                close_timeout=1.0,
                ping_interval=20,
                max_size=MAX_EVENT_BYTES,
                logger=RedactingLogger(log, target.secrets),
                **kwargs,
            )
            return RealtimeConnection(ws, target)
        except InvalidStatus as exc:
            response = exc.response
            error: ProviderError = status_error(
                policy,
                response.status_code,
                bytes(response.body or b""),
                response.headers.get("retry-after"),
            )
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            error = map_exception(policy, exc)
        attempt += 1
        if not error.retryable or attempt >= CONNECT_ATTEMPTS:
            raise error
        await asyncio.sleep(0.25)
