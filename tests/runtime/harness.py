"""Test harness for the runtime: a fake internal API, an in-process uvicorn
runtime on a free loopback port, and a device client that speaks the xiaozhi
protocol with real Opus over a real WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect

from runtime.app import RuntimeApp, create_app
from runtime.audio.opus import OpusDecoder, OpusEncoder, PcmFramer
from runtime.pipeline.interfaces import Pipeline
from runtime.protocol.device import Hello, Listen, ListenMode, ListenState
from runtime.protocol.framing import Frame, FrameKind, framing_for
from runtime.server import RuntimeServer, build_config
from runtime.settings import RuntimeSettings
from tests.conftest import TEST_TIME_UNIT

SECRET = "test-internal-secret-0123456789"
USER_ID = "00000000-0000-4000-8000-000000000001"


@dataclass
class FakeDevice:
    token: str
    uuid: str
    agent: dict[str, Any] | None = None
    facts: list[str] = field(default_factory=list)
    firmware_version: str = "1.7.2"


@dataclass
class FakePlatform:
    """The internal endpoints of docs/internal-api.md, in memory."""

    devices: dict[str, FakeDevice] = field(default_factory=dict)
    voice_tokens: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    token_kinds: dict[str, str] = field(default_factory=dict)
    opened: dict[str, dict[str, Any]] = field(default_factory=dict)
    closed: dict[str, dict[str, Any]] = field(default_factory=dict)
    turns: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    states: list[tuple[str, str]] = field(default_factory=list)
    bootstraps: list[dict[str, Any]] = field(default_factory=list)
    activations: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False
    refused_records: int = 0

    def add_device(self, agent: dict[str, Any] | None = None) -> FakeDevice:
        device = FakeDevice(token="od_dt_" + uuid.uuid4().hex, uuid=str(uuid.uuid4()), agent=agent)
        self.devices[device.token] = device
        return device

    def add_voice_token(self, agent: dict[str, Any] | None = None, kind: str = "voice") -> str:
        token = "od_vt_" + uuid.uuid4().hex
        self.voice_tokens[token] = agent or {"id": str(uuid.uuid4()), "name": "Test agent"}
        self.token_kinds[token] = kind
        return token

    def memory_of(self, device_uuid: str) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for turn in self.turns.values():
            session = self.opened.get(turn["sessionId"], {})
            if session.get("deviceId") == device_uuid and turn["outcome"] == "completed":
                out += [
                    {"role": "user", "content": turn["transcript"]},
                    {"role": "assistant", "content": turn["replyText"]},
                ]
        return out

    def turns_of(self, session_id: str) -> list[dict[str, Any]]:
        return sorted(
            (t for t in self.turns.values() if t["sessionId"] == session_id),
            key=lambda t: t["turnIndex"],
        )

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            if self.down:
                return JSONResponse({"error": "down"}, status_code=503)
            if request.headers.get("x-opendot-runtime-secret") != SECRET:
                return JSONResponse({"error": "bad secret"}, status_code=401)
            body = await request.json()
            path = request.url.path.removeprefix("/api/internal")
            return self._route(path, body)

        return Starlette(routes=[Route("/api/internal/{rest:path}", handle, methods=["POST"])])

    def _route(self, path: str, body: dict[str, Any]) -> Response:
        ok = JSONResponse({"ok": True})
        if path == "/device-runtime/verify":
            device = self.devices.get(body["token"])
            if device is None:
                return JSONResponse({"error": "Device authentication failed"}, status_code=401)
            return JSONResponse(
                {
                    "userId": USER_ID,
                    "device": {
                        "id": device.uuid,
                        "name": "Dot TEST",
                        "firmwareVersion": device.firmware_version,
                    },
                    "agent": device.agent,
                    "memory": self.memory_of(device.uuid),
                    "facts": list(device.facts),
                    "timezone": "Europe/Zurich",
                    "secrets": {},
                }
            )
        if path == "/device-runtime/config":
            for device in self.devices.values():
                if device.uuid == body["deviceId"]:
                    return JSONResponse({"agent": device.agent})
            return JSONResponse({"error": "unknown"}, status_code=404)
        if path == "/device-runtime/memory/facts":
            for device in self.devices.values():
                if device.uuid == body["deviceId"]:
                    if body.get("forget"):
                        device.facts = [f for f in device.facts if body["forget"] not in f]
                    if body.get("remember"):
                        device.facts.append(body["remember"])
                    return JSONResponse({"facts": device.facts})
            return JSONResponse({"error": "unknown"}, status_code=404)
        if path == "/device-runtime/state":
            self.states.append((body["deviceId"], body["availability"]))
            return ok
        if path == "/runtime/voice-sessions/verify":
            if self.token_kinds.get(body["token"]) != body.get("kind", "voice"):
                return JSONResponse({"error": "Voice session expired"}, status_code=401)
            agent = self.voice_tokens.pop(body["token"], None)
            if agent is None:
                return JSONResponse({"error": "Voice session expired"}, status_code=401)
            return JSONResponse({"userId": USER_ID, "agent": agent, "secrets": {}})
        if path == "/runtime/sessions/open":
            self.opened[body["sessionId"]] = body
            return JSONResponse({"ok": True}, status_code=201)
        if path == "/runtime/sessions/close":
            self.closed[body["sessionId"]] = body
            return ok
        if path == "/runtime/records":
            for turn in body["turns"]:
                if turn["sessionId"] not in self.opened:
                    self.refused_records += 1
                    return JSONResponse({"error": "unknown session"}, status_code=409)
                self.turns[turn["id"]] = turn
            self.events.extend(body["events"])
            return JSONResponse(
                {"ok": True, "turns": len(body["turns"]), "events": len(body["events"])}
            )
        if path == "/device-activations/bootstrap":
            self.bootstraps.append(body)
            return JSONResponse(
                {
                    "server_time": {"timestamp": 1, "timezone_offset": 0},
                    "websocket": {"url": body["websocketUrl"], "version": 1},
                }
            )
        if path == "/device-activations/activate":
            self.activations.append(body)
            return JSONResponse({"ok": False, "status": "pending"}, status_code=202)
        return JSONResponse({"error": "not found"}, status_code=404)


def test_settings(**overrides: Any) -> RuntimeSettings:
    values: dict[str, Any] = {
        "OPENDOT_RUNTIME_INTERNAL_SECRET": SECRET,
        "PLATFORM_API_INTERNAL_URL": "http://platform.test/api",
        "RUNTIME_HOST": "127.0.0.1",
        "RUNTIME_RECORDS_FLUSH_INTERVAL_S": 0.05,
        "RUNTIME_SHUTDOWN_DRAIN_S": 2.0 * TEST_TIME_UNIT,
        "CLOSE_DEVICE_AFTER_TURN_DELAY_MS": 50,
    }
    values.update(overrides)
    return RuntimeSettings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class RunningRuntime:
    app: RuntimeApp
    server: RuntimeServer
    port: int
    task: asyncio.Task[None]

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def running_runtime(
    pipeline: Callable[[Mapping[str, Any] | None], Pipeline],
    platform: FakePlatform | None = None,
    api_transport: httpx.AsyncBaseTransport | None = None,
    realtime: Any = None,
    **settings: Any,
) -> AsyncIterator[RunningRuntime]:
    """Start the real runtime under uvicorn on a free loopback port."""
    if api_transport is None:
        assert platform is not None
        api_transport = httpx.ASGITransport(app=platform.app())
    config_settings = test_settings(**settings)
    app = create_app(
        config_settings,
        pipeline_factory=lambda agent, _secrets, _user: pipeline(agent),
        api_transport=api_transport,
        realtime=realtime,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = RuntimeServer(build_config(app, config_settings, log_level="warning"), app)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(int(200 * TEST_TIME_UNIT)):
        if server.started:
            break
        await asyncio.sleep(0.025)
    assert server.started, "runtime did not start"
    try:
        yield RunningRuntime(app, server, port, task)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=20 * TEST_TIME_UNIT)
        sock.close()


class DeviceClient:
    """A Dot: real WebSocket, xiaozhi JSON, Opus 16 kHz / 60 ms frames up."""

    def __init__(self, base: str, token: str, version: int = 1, device_id: str | None = None):
        self.url = base + "/ws"
        self.token = token
        self.version = version
        self.device_id = device_id or "aa:bb:cc:dd:ee:01"
        self.framing = framing_for(version)
        self.ws: ClientConnection | None = None
        self.session_id: str | None = None
        self.messages: list[dict[str, Any]] = []
        self.packets: list[bytes] = []
        self.log: list[tuple[str, Any]] = []  # ("json", obj) | ("audio", packet) in order
        self._encoder = OpusEncoder(16_000, 60, complexity=1)

    async def connect(self, headers: dict[str, str] | None = None) -> None:
        base_headers = {
            "Authorization": f"Bearer {self.token}",
            "Protocol-Version": str(self.version),
            "Device-Id": self.device_id,
            "Client-Id": str(uuid.uuid4()),
        }
        base_headers.update(headers or {})
        self.ws = await connect(
            self.url, additional_headers=base_headers, compression=None, open_timeout=10
        )

    async def hello(self, features: Mapping[str, Any] | None = None) -> dict[str, Any]:
        await self.send_text(Hello(version=self.version, features=dict(features or {})).to_json())
        reply = await self.next_json(lambda m: m["type"] == "hello")
        self.session_id = reply["session_id"]
        return reply

    async def send_text(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send(text)

    async def listen(self, state: ListenState, mode: ListenMode | None = None) -> None:
        await self.send_text(Listen(state, mode).to_json(self.session_id or ""))

    async def listen_auto(self) -> None:
        await self.listen(ListenState.START, ListenMode.AUTO)

    async def speak(self, pcm16k: bytes, pace_s: float = 0.0) -> None:
        """A Dot's whole start of a turn: connect, hello, listen (auto), the utterance."""
        await self.connect()
        await self.hello()
        await self.listen_auto()
        await self.send_audio(pcm16k, pace_s=pace_s)

    def opus_frames(self, pcm16k: bytes) -> list[bytes]:
        framer = PcmFramer(16_000, 60)
        return [self._encoder.encode(f) for f in framer.push(pcm16k) + framer.flush(pad=True)]

    async def send_audio(self, pcm16k: bytes, pace_s: float = 0.0) -> None:
        assert self.ws is not None
        for packet in self.opus_frames(pcm16k):
            await self.ws.send(self.framing.serialize(Frame(FrameKind.AUDIO, packet)))
            if pace_s:
                await asyncio.sleep(pace_s)

    async def recv(self, within: float) -> tuple[str, Any]:
        assert self.ws is not None
        data = await asyncio.wait_for(self.ws.recv(), timeout=within)
        if isinstance(data, str):
            obj = json.loads(data)
            self.messages.append(obj)
            self.log.append(("json", obj))
            return "json", obj
        frame = self.framing.parse(data)
        assert isinstance(frame, Frame), frame
        self.packets.append(frame.payload)
        self.log.append(("audio", frame.payload))
        return "audio", frame.payload

    async def next_json(
        self, predicate: Callable[[dict[str, Any]], bool], within: float | None = None
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + (within or 10 * TEST_TIME_UNIT)
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            kind, value = await self.recv(max(0.001, remaining))
            if kind == "json" and predicate(value):
                return dict(value)

    async def until_closed(self, within: float | None = None) -> tuple[int | None, str]:
        """Read everything until the server closes; returns (code, reason)."""
        assert self.ws is not None
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await self.recv(within or 10 * TEST_TIME_UNIT)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code if rcvd else None), (rcvd.reason if rcvd else "")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        self._encoder.close()


def decodable(packets: list[bytes]) -> int:
    """How many packets decode as 24 kHz Opus (the downlink format)."""
    decoder = OpusDecoder(24_000)
    try:
        return sum(1 for p in packets if len(decoder.decode(p)) == 2880)
    finally:
        decoder.close()


def final_stt(messages: list[dict[str, Any]]) -> str:
    """The turn's final transcript: the last `stt` before the reply's first `llm` or `tts`.

    Earlier `stt` messages are live partials (docs/protocols.md), whose text depends on
    when a decode ran, so a test that reads the first one reads the machine's speed."""
    text: str | None = None
    for message in messages:
        if message["type"] in ("llm", "tts"):
            break
        if message["type"] == "stt":
            text = message["text"]
    assert text is not None, "no stt message before the reply"
    return text
