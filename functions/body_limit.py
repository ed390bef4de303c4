"""Request body limits: a pure ASGI middleware that counts bytes as they arrive.

Every API body is small JSON, so a request larger than its route's limit is
refused with 413 and a sentence before the application sees it:

- `/api/internal/runtime/records`: 8 MiB. A runtime batch holds up to 100
  turns (transcript and reply at most 20,000 and 50,000 characters) and 400
  events.
- everything else: 256 KiB. The largest real body is an agent with its
  pipeline, about 10 KiB; an OTA bootstrap forwards at most 64 KiB of system
  info.

`Content-Length` is checked first (no byte is read when it already says too
much), but it is not trusted: a chunked body, or one longer than it claimed,
is counted message by message and cut off at the limit. When that happens
mid-stream the 413 is sent at once and the application's read ends as a
client disconnect; anything it answers afterwards is dropped.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LIMIT = 256 * 1024
ROUTE_LIMITS: tuple[tuple[str, int], ...] = (("/api/internal/runtime/records", 8 * 1024 * 1024),)


def limit_for(path: str) -> int:
    for prefix, limit in ROUTE_LIMITS:
        if path == prefix or path.startswith(prefix + "/"):
            return limit
    return DEFAULT_LIMIT


def _sentence(limit: int) -> str:
    size = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
    return f"The request body is too large: this endpoint accepts at most {size}."


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared == -1:
            await _answer(send, 400, "The Content-Length header is not a number.")
            return
        if declared is not None and declared > limit:
            await _answer(send, 413, _sentence(limit))
            return
        received = 0
        refused = False
        answered = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not answered:
                        await _answer(send, 413, _sentence(limit))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if refused:
                return  # the 413 is the answer
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent, -1 when it is not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None
