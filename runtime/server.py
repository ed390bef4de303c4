"""`opendot runtime`: serve the voice runtime under uvicorn.

Per-message compression is off (Opus does not compress, and deflate state costs
~64 KiB per socket). Shutdown is graceful in the runtime's own order: stop
accepting, let running turns finish up to RUNTIME_SHUTDOWN_DRAIN_S, close every
socket with 1001, flush records — and only then let uvicorn tear down the rest
(uvicorn alone would close WebSockets at once with 1012).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import time
from typing import Any

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from runtime.app import RuntimeApp, create_app
from runtime.session.socket import ARRIVED
from runtime.settings import RuntimeSettings

READ_HIGH_WATER = 8  # messages waiting for a session before its socket is no longer read
READ_LOW_WATER = 2  # ... and read again once this few are left


class RuntimeWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with two changes for audio sockets.

    - Each received message is stamped with the instant the event loop read it
      (`ARRIVED`), so the frame-processing histogram covers the wait for the
      session's turn on the loop and not only the handling itself.
    - Flow control with a little slack: uvicorn stops reading a socket after
      every message and starts again when the app takes it, two epoll
      registrations per 60 ms frame per device (as much CPU as decoding the
      Opus). Here a socket is paused only when `READ_HIGH_WATER` messages wait,
      which bounds memory just the same.
    """

    def send_receive_event_to_app(self) -> None:
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return  # past `websocket.close`: drop it, keep reading until the close reply
        message: dict[str, Any]
        if self.curr_msg_data_type == "text":
            try:
                message = {"type": "websocket.receive", "text": data.decode()}
            except UnicodeDecodeError:
                self.logger.info("Invalid UTF-8 sequence received from client.")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        else:
            message = {"type": "websocket.receive", "bytes": data}
        message[ARRIVED] = time.monotonic()
        self.queue.put_nowait(message)  # type: ignore[arg-type]
        if not self.read_paused and self.queue.qsize() >= READ_HIGH_WATER:
            self.read_paused = True
            self.transport.pause_reading()

    async def receive(self) -> Any:
        message = await self.queue.get()
        if self.read_paused and self.queue.qsize() <= READ_LOW_WATER:
            self.read_paused = False
            self.transport.resume_reading()
        return message


def build_config(app: RuntimeApp, settings: RuntimeSettings, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "ws": RuntimeWebSocketProtocol,
        "ws_per_message_deflate": False,
        "ws_max_size": settings.max_frame_bytes,
        "lifespan": "on",
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "timeout_graceful_shutdown": settings.shutdown_drain_s + 5,
        # uvicorn's default (5 s) equals py-xiaozhi's activation poll interval, so a poll
        # now and then met a connection the server was closing (ServerDisconnectedError).
        "timeout_keep_alive": settings.keep_alive_s,
        "log_level": settings.log_level.lower(),
        "access_log": False,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


class RuntimeServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: RuntimeApp) -> None:
        super().__init__(config)
        self.runtime = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # stop accepting first
        await self.runtime.ctx.registry.drain(self.runtime.ctx.settings.shutdown_drain_s)
        await super().shutdown(sockets)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (RUNTIME_HOST)")
    parser.add_argument("--port", type=int, help="bind port (RUNTIME_PORT)")


def run(args: argparse.Namespace) -> int:
    settings = RuntimeSettings()
    updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if updates:
        settings = settings.model_copy(update=updates)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = create_app(settings)
    server = RuntimeServer(build_config(app, settings), app)
    asyncio.run(server.serve())
    return 0
