"""A thin adapter from raw ASGI WebSocket messages to what sessions need.

Raw ASGI instead of Starlette's `WebSocket` because the receive loop runs once
per 60 ms audio frame for hundreds of sessions, and the only things it needs
are the message's bytes or text.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from runtime.session.outbox import Transport

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Key of a received message's arrival (time.monotonic()), set by the server's protocol.
ARRIVED = "opendot.arrived"


class AsgiSocket(Transport):
    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self._send = send
        self.closed = False

    # --- handshake -------------------------------------------------------------------

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode("latin-1")
        for key, value in self.scope.get("headers", []):
            if key.lower() == wanted:
                return bytes(value).decode("latin-1")
        return None

    def query(self, name: str) -> str | None:
        from urllib.parse import parse_qs

        raw = self.scope.get("query_string", b"").decode("latin-1")
        values = parse_qs(raw).get(name)
        return values[0] if values else None

    @property
    def client_ip(self) -> str | None:
        client = self.scope.get("client")
        if not client:
            return None
        host = str(client[0])
        return host.removeprefix("::ffff:")

    async def connected(self) -> bool:
        """Wait for the connect event; False when the client already left."""
        message = await self.receive()
        return bool(message["type"] == "websocket.connect")

    async def accept(self) -> None:
        await self._send({"type": "websocket.accept"})

    async def deny(self, status: int, message: str) -> None:
        """Refuse the upgrade with a plain HTTP answer (after `connected`, before `accept`)."""
        body = json.dumps({"error": message}).encode()
        if "websocket.http.response" in self.scope.get("extensions", {}):
            await self._send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await self._send({"type": "websocket.http.response.body", "body": body})
        else:  # pragma: no cover - servers without the denial extension answer 403
            await self._send({"type": "websocket.close", "code": 1008, "reason": message})
        self.closed = True

    # --- Transport ---------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})
