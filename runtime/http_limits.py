"""Request body limit for the runtime's HTTP routes (pure ASGI).

Every HTTP body the runtime takes is small: a Dot's OTA system info is about
2 KiB, an activation poll a few hundred bytes. `BodyLimit` refuses anything
larger than RUNTIME_MAX_BODY_BYTES with 413 and a sentence — at once when the
declared Content-Length is too large, otherwise while the body streams in, so
a chunked upload without a length is cut off at the limit instead of read
whole. Under the limit the body is handed to the route as one message.

A route that bounds its own body, with an answer in its client's format (the
Dot's camera upload: up to 2 MiB, `{success, message}`), is named in
`own_limit` and passes untouched.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {"error": f"The request body is larger than the {limit} bytes this runtime accepts."}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(
        self, app: ASGIApp, max_bytes: int, own_limit: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.own_limit = own_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.own_limit:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before its body was complete
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await _too_large(send, self.max_bytes)
                return
            more = bool(message.get("more_body", False))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: disconnect, as the server says

        await self.app(scope, replay, send)
