"""A small fake OpenDot runtime on 127.0.0.1 for the simulator's tests.

Real HTTP and a real WebSocket (Starlette under uvicorn), scripted behaviour:
OTA hands out an activation code until `claimed`, `/ws` checks the Bearer
token (401 before the upgrade otherwise), answers hello, and runs a turn when
the device's speech ends (energy-based: speech then 5 quiet frames) or on
`listen stop`: `stt`, `llm`, `tts start`, a sentence of 24 kHz Opus tone,
`tts stop`, optionally closing the socket afterwards. `abort` stops the reply
at once and answers `tts stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from runtime.audio.opus import OpusDecoder, OpusEncoder
from runtime.protocol.device import (
    Abort,
    Hello,
    Listen,
    ListenMode,
    ListenState,
    Llm,
    ServerHello,
    Stt,
    Tts,
    parse_device_message,
)
from runtime.protocol.errors import ProtocolError
from runtime.protocol.framing import Frame, FrameKind, framing_for, negotiate_version

TOKEN = "od_dt_fake-token"
CODE = "482913"


def tone_frames(count: int, rate: int = 24_000) -> list[bytes]:
    encoder = OpusEncoder(rate, 60)
    samples = encoder.frame_samples
    try:
        return [
            encoder.encode(
                struct.pack(
                    f"<{samples}h",
                    *(
                        int(9000 * math.sin(2 * math.pi * 330 * (n * samples + i) / rate))
                        for i in range(samples)
                    ),
                )
            )
            for n in range(count)
        ]
    finally:
        encoder.close()


@dataclass
class FakeBehaviour:
    claimed_after_polls: int = 2
    reply_frames: int = 12
    frame_gap: float = 0.01
    close_after_turn: bool = False
    answer_hello: bool = True
    transcript: str = "hello there"


@dataclass
class Recorded:
    ota_headers: list[dict[str, str]] = field(default_factory=list)
    ota_bodies: list[dict[str, Any]] = field(default_factory=list)
    activate_polls: int = 0
    ws_headers: list[dict[str, str]] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    messages: list[object] = field(default_factory=list)
    audio_frames: int = 0
    bad_frames: list[str] = field(default_factory=list)
    sessions: int = 0


class FakeRuntime:
    def __init__(self, behaviour: FakeBehaviour | None = None) -> None:
        self.behaviour = behaviour or FakeBehaviour()
        self.recorded = Recorded()
        self.port = 0
        self._reply = tone_frames(self.behaviour.reply_frames)
        self.app = Starlette(
            routes=[
                Route("/ota/", self.ota, methods=["POST"]),
                Route("/ota/activate", self.activate, methods=["POST"]),
                WebSocketRoute("/ws", self.ws),
            ]
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ota(self, request: Request) -> Response:
        self.recorded.ota_headers.append(dict(request.headers))
        self.recorded.ota_bodies.append(await request.json())
        body: dict[str, Any] = {
            "server_time": {"timestamp": 1_764_000_000_000, "timezone_offset": 0},
            "websocket": {"url": f"ws://127.0.0.1:{self.port}/ws", "version": 1},
        }
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            body["websocket"]["token"] = TOKEN
            body["activation"] = {
                "message": "Enter this code in OpenDot to pair your Dot device.",
                "code": CODE,
                "challenge": "c-1",
                "timeout_ms": 300_000,
            }
        return JSONResponse(body)

    async def activate(self, request: Request) -> Response:
        self.recorded.activate_polls += 1
        if self.recorded.activate_polls > self.behaviour.claimed_after_polls:
            return JSONResponse({"ok": True, "status": "completed"})
        return JSONResponse({"ok": False, "status": "pending"}, status_code=202)

    async def ws(self, websocket: WebSocket) -> None:
        headers = dict(websocket.headers)
        self.recorded.ws_headers.append(headers)
        if headers.get("authorization") != f"Bearer {TOKEN}":
            await websocket.send_denial_response(Response("Device authentication failed", 401))
            return
        await websocket.accept()
        self.recorded.sessions += 1
        session = _Session(self, websocket, headers.get("protocol-version"))
        with contextlib.suppress(WebSocketDisconnect):
            await session.run()
        session.cancel()

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[FakeRuntime]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", ws="websockets-sansio"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
            await asyncio.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            await task


class _Session:
    def __init__(self, fake: FakeRuntime, websocket: WebSocket, header: str | None) -> None:
        self.fake = fake
        self.ws = websocket
        self.header = header
        self.framing = framing_for(negotiate_version(header))
        self.session_id = f"fake-{fake.recorded.sessions}"
        self.decoder = OpusDecoder(16_000)
        self.mode = ListenMode.AUTO
        self.heard_speech = False
        self.quiet = 0
        self.replying: asyncio.Task[None] | None = None
        self.stop_reply = asyncio.Event()

    def cancel(self) -> None:
        if self.replying is not None:
            self.replying.cancel()
        self.decoder.close()

    async def run(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await self.audio(message["bytes"])
            elif message.get("text") is not None:
                await self.json(message["text"])

    async def json(self, text: str) -> None:
        parsed = parse_device_message(text)
        self.fake.recorded.messages.append(parsed)
        if isinstance(parsed, Hello):
            version = negotiate_version(self.header, parsed.version)
            self.fake.recorded.versions.append(version)
            self.framing = framing_for(version)
            if self.fake.behaviour.answer_hello:
                await self.ws.send_text(ServerHello().to_json(self.session_id))
        elif isinstance(parsed, Listen):
            if parsed.state == ListenState.START:
                self.mode = parsed.mode or ListenMode.AUTO
                self.heard_speech, self.quiet = False, 0
            elif parsed.state == ListenState.STOP:
                self.start_reply()
        elif isinstance(parsed, Abort):
            self.stop_reply.set()

    async def audio(self, data: bytes) -> None:
        frame = self.framing.parse(data)
        if isinstance(frame, ProtocolError):
            self.fake.recorded.bad_frames.append(frame.message)
            return
        self.fake.recorded.audio_frames += 1
        pcm = self.decoder.decode(frame.payload)
        samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
        loud = max((abs(s) for s in samples), default=0) > 600
        if self.mode == ListenMode.MANUAL or self.replying is not None:
            return
        if loud:
            self.heard_speech, self.quiet = True, 0
        elif self.heard_speech:
            self.quiet += 1
            if self.quiet >= 5:
                self.start_reply()

    def start_reply(self) -> None:
        if self.replying is None:
            self.replying = asyncio.create_task(self.reply())

    async def send(self, message: Stt | Llm | Tts) -> None:
        await self.ws.send_text(message.to_json(self.session_id))

    async def reply(self) -> None:
        behaviour = self.fake.behaviour
        await self.send(Stt(behaviour.transcript))
        await self.send(Llm("happy"))
        await self.send(Tts.start())
        await self.send(Tts.sentence_start("This is the fake reply."))
        for packet in self.fake._reply:
            if self.stop_reply.is_set():
                break
            await self.ws.send_bytes(self.framing.serialize(Frame(FrameKind.AUDIO, packet)))
            await asyncio.sleep(behaviour.frame_gap)
        await self.send(Tts.stop())
        self.replying = None
        self.stop_reply.clear()
        self.heard_speech, self.quiet = False, 0
        if behaviour.close_after_turn:
            await asyncio.sleep(0.05)
            await self.ws.close(1000, "turn_complete")
