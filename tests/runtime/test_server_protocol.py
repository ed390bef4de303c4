"""The runtime's WebSocket protocol under a real uvicorn: arrival stamps, and flow
control that reads ahead a few messages but stops reading a socket whose session
does not keep up (bounded memory, nothing lost)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from websockets.asyncio.client import connect

from runtime.server import READ_HIGH_WATER, RuntimeWebSocketProtocol
from runtime.session.socket import ARRIVED
from tests.conftest import TEST_TIME_UNIT

T = TEST_TIME_UNIT
MESSAGES = 6000  # 780 KB on the wire: several of asyncio's reads
SIZE = 124  # bytes per message, about a 60 ms Opus frame
READ_BYTES = 256 * 1024  # what asyncio's socket transport asks recv() for
WIRE = SIZE + 6  # a masked client frame: 2 header bytes and a 4-byte mask


class SlowReader:
    """Accepts, waits for `go`, then reads everything, noting the queue's peak."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.received: list[dict[str, Any]] = []
        self.done = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await self.go.wait()
        while len(self.received) < MESSAGES:
            message = await receive()
            if message["type"] != "websocket.receive":
                break
            self.received.append(message)
        self.done.set()
        await send({"type": "websocket.close", "code": 1000})


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[tuple[uvicorn.Server, int]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, ws=RuntimeWebSocketProtocol, lifespan="off", log_level="warning", ws_max_size=4096
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(int(200 * T)):
        if server.started:
            break
        await asyncio.sleep(0.025)
    try:
        yield server, port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10 * T)
        sock.close()


async def test_reads_ahead_a_little_then_pauses_and_loses_nothing() -> None:
    app = SlowReader()
    async with (
        serve(app) as (server, port),
        connect(f"ws://127.0.0.1:{port}/ws", compression=None) as ws,
    ):
        sent_at: list[float] = []

        async def sender() -> None:
            for i in range(MESSAGES):
                sent_at.append(time.monotonic())
                await ws.send(i.to_bytes(4, "big") + bytes(SIZE - 4))

        sending = asyncio.create_task(sender())
        await asyncio.sleep(0.3 * T)  # all in flight or in socket buffers; nothing read
        try:
            (protocol,) = server.server_state.connections
            assert isinstance(protocol, RuntimeWebSocketProtocol)
            assert protocol.read_paused
            # Frames of the read that crossed the mark are queued too: at most
            # one read's worth beyond it.
            queued = protocol.queue.qsize()
            assert READ_HIGH_WATER <= queued <= READ_HIGH_WATER + READ_BYTES // WIRE + 1
            assert queued < MESSAGES // 2
        finally:
            app.go.set()
        await asyncio.wait_for(sending, 10 * T)
        await asyncio.wait_for(app.done.wait(), 10 * T)
    numbers = [int.from_bytes(m["bytes"][:4], "big") for m in app.received]
    assert numbers == list(range(MESSAGES))
    arrivals = [m[ARRIVED] for m in app.received]
    assert arrivals == sorted(arrivals)
    assert all(a >= s for a, s in zip(arrivals, sent_at, strict=True))
