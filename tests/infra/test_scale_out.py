"""Two runtime processes, one database: a rebind through the API reaches the
runtime that holds the device, without a reconnect.

Everything is real except the language model: the platform API (uvicorn, on
the test database), two `opendot runtime` processes (each LISTENing on
`opendot_device_config`), the device (the simulator: OTA + activation through
runtime A, then a `/ws` socket to runtime B, Opus both ways), local Whisper
STT and local TTS. The LLM is a loopback fake with the OpenAI chat API that
answers with the model name it was asked for, so each reply says which
agent's configuration runtime B used for that turn.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from functions.app import create_app
from functions.settings import ApiSettings
from tests.infra.conftest import TIME_UNIT

T = TIME_UNIT
INTERNAL_SECRET = "scale-out-internal-secret-0123456789"
SECRETS_KEY = base64.b64encode(bytes(range(32))).decode()
OPENDOT = str(Path(sys.executable).parent / "opendot")
REFRESHED = re.compile(r"device (\S+): configuration updated")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def _serve(app: Any) -> AsyncIterator[str]:
    """An ASGI app under a real uvicorn on a loopback port; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(int(200 * T)):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20 * T)


@dataclass
class FakeLlm:
    """OpenAI-compatible chat completions that answer with the requested model's name."""

    models: list[str] = field(default_factory=list)

    async def completions(self, request: Request) -> StreamingResponse:
        body = await request.json()
        model = str(body["model"])
        self.models.append(model)
        reply = f"<chunk>Model {model} speaking.</chunk>"

        async def events() -> AsyncIterator[bytes]:
            for start in range(0, len(reply), 10):
                delta = {"choices": [{"index": 0, "delta": {"content": reply[start : start + 10]}}]}
                yield f"data: {json.dumps(delta)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.completions, methods=["POST"])])


@dataclass
class RuntimeProcess:
    name: str
    url: str
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def refreshed(self, device_id: str) -> int:
        return sum(1 for line in self.lines if (m := REFRESHED.search(line)) and m[1] == device_id)

    async def wait_for(self, condition: Callable[[], bool], within: float, what: str) -> None:
        for _ in range(int(within / 0.05)):
            if condition():
                return
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        tail = "\n".join(self.lines[-30:])
        raise AssertionError(f"runtime {self.name}: {what} did not happen\n{tail}")


@contextlib.asynccontextmanager
async def _runtime(
    name: str, api_url: str, database_url: str, home: Path
) -> AsyncIterator[RuntimeProcess]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "OPENDOT_ENV": "test",
        "OPENDOT_LOG_LEVEL": "INFO",
        "RUNTIME_HOST": "127.0.0.1",
        "RUNTIME_PORT": str(port),
        "RUNTIME_INSTANCE_ID": f"runtime-{name}",
        "RUNTIME_SHUTDOWN_DRAIN_S": "1",
        "PLATFORM_API_INTERNAL_URL": f"{api_url}/api",
        "OPENDOT_RUNTIME_PUBLIC_HTTP_URL": url,
        "OPENDOT_RUNTIME_INTERNAL_SECRET": INTERNAL_SECRET,
        "OPENDOT_SECRETS_KEY": SECRETS_KEY,
        "POSTGRES_URI": database_url,
        "RUNTIME_LISTEN_CONFIG": "true",
        "CLOSE_DEVICE_AFTER_TURN": "false",
        # The fake LLM lives on loopback, which the SSRF guard refuses by default.
        "OPENDOT_ALLOW_PRIVATE_BASE_URLS": "true",
        "HF_HUB_OFFLINE": "1",
    }
    process = await asyncio.create_subprocess_exec(
        OPENDOT,
        "runtime",
        env=env,
        cwd=home,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    runtime = RuntimeProcess(name, url, process)
    runtime._reader = asyncio.create_task(runtime.read())
    try:
        async with httpx.AsyncClient(timeout=2.0) as http:
            for _ in range(int(600 * T)):
                if process.returncode is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"runtime {name} never became healthy")
        assert process.returncode is None, "\n".join(runtime.lines[-30:])
        yield runtime
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30 * T)
            except TimeoutError:
                process.kill()
                await process.wait()
        if runtime._reader is not None:
            await asyncio.wait_for(runtime._reader, 10 * T)


async def _call(
    http: httpx.AsyncClient, method: str, path: str, token: str, body: object = None
) -> dict[str, Any]:
    response = await http.request(
        method, path, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code < 300, (method, path, response.status_code, response.text)
    result: dict[str, Any] = response.json()
    return result


async def _agent(http: httpx.AsyncClient, token: str, model: str, llm_url: str) -> str:
    created = await _call(
        http, "POST", "/api/agents", token, {"name": f"Agent {model}", "description": "scale-out"}
    )
    agent_id = str(created["agent"]["id"])
    llm_stage = {
        "id": "llm",
        "provider": "openai",
        "model": model,
        "settings": {"base_url": f"{llm_url}/v1", "api": "chat_completions", "max_retries": 0},
    }
    updated = await _call(http, "PUT", f"/api/agents/{agent_id}", token, {"pipeline": [llm_stage]})
    stage = next(s for s in updated["agent"]["pipeline"] if s["id"] == "llm")
    assert stage["provider"] == "openai" and stage["model"] == model
    return agent_id


async def _notify_until(
    database_url: str, device_id: str, seen: Callable[[], bool], within: float
) -> None:
    """NOTIFY directly until the runtime reacts: proves its listener is subscribed
    before the real change is made (a NOTIFY before LISTEN is lost by design)."""
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(int(within / 0.25)):
            await conn.execute("select pg_notify('opendot_device_config', $1)", device_id)
            await asyncio.sleep(0.25)
            if seen():
                return
    finally:
        await conn.close()
    raise AssertionError("the runtime never reacted to NOTIFY opendot_device_config")


async def test_rebind_through_the_api_reaches_the_device_on_the_other_runtime(
    database_url: str, tmp_path: Path
) -> None:
    from runtime.simulator.audio import synthesize_16k

    llm = FakeLlm()
    api_settings = ApiSettings(  # type: ignore[call-arg]
        _env_file=None,
        OPENDOT_ENV="test",
        POSTGRES_URI=database_url,
        PLATFORM_AUTH_REQUIRED=True,
        OPENDOT_RUNTIME_INTERNAL_SECRET=SecretStr(INTERNAL_SECRET),
        OPENDOT_SECRETS_KEY=SecretStr(SECRETS_KEY),
        OPENDOT_SESSION_SECRET=SecretStr("scale-out-session-secret-with-enough-length"),
        SUPABASE_URL=None,
    )
    api_app = create_app(api_settings)
    utterance = synthesize_16k("What is the weather like today?")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()

    try:
        await _converse_across_runtimes(api_app, llm, database_url, tmp_path, utterance)
    finally:
        await api_app.state.services.db.close()


async def _converse_across_runtimes(
    api_app: Any, llm: FakeLlm, database_url: str, tmp_path: Path, utterance: bytes
) -> None:
    from runtime.simulator.device import SimulatedDevice
    from runtime.simulator.identity import DeviceIdentity
    from runtime.simulator.ota import Activation

    async with (
        _serve(llm.app()) as llm_url,
        _serve(api_app) as api_url,
        httpx.AsyncClient(base_url=api_url, timeout=20 * T) as http,
        _runtime("a", api_url, database_url, tmp_path / "a") as runtime_a,
        _runtime("b", api_url, database_url, tmp_path / "b") as runtime_b,
    ):
        signup = await http.post(
            "/api/auth/signup",
            json={"email": f"fleet-{uuid.uuid4().hex[:8]}@example.test", "password": "x" * 16},
        )
        assert signup.status_code == 201, signup.text
        token = signup.json()["accessToken"]
        agent_one = await _agent(http, token, "fake-one", llm_url)
        agent_two = await _agent(http, token, "fake-two", llm_url)

        # Provision through runtime A: OTA, activation code, claim in the API.
        claimed: dict[str, Any] = {}

        async def claim(activation: Activation) -> None:
            body = await _call(
                http, "POST", "/api/device-activations/claim", token, {"code": activation.code}
            )
            claimed.update(body["device"])

        identity = DeviceIdentity(mac="02:0d:07:00:00:0b")
        device = SimulatedDevice(runtime_a.url, identity, pace=0, poll_interval=0.2)
        async with device:
            on_activation: Callable[[Activation], Awaitable[None]] = claim
            await device.provision(on_activation, give_up_after=60 * T)
            device_id = str(claimed["id"])
            await _call(
                http, "PUT", f"/api/dot-devices/{device_id}", token, {"boundAgentId": agent_one}
            )

            # The device's socket goes to runtime B (another container behind the balancer).
            identity.websocket["url"] = runtime_b.url.replace("http", "ws", 1) + "/ws"
            first = await device.turn(utterance, reply_timeout=90 * T)
            assert first.transcript, first
            assert first.sentences == ["Model fake-one speaking."], first
            connection = device.connection
            assert connection is not None and device.connected
            session_id = connection.session_id

            baseline = runtime_b.refreshed(device_id)
            await _notify_until(
                database_url, device_id, lambda: runtime_b.refreshed(device_id) > baseline, 30 * T
            )

            # The real change: rebind through the API. Its trigger NOTIFYs; B refetches.
            before = runtime_b.refreshed(device_id)
            rebound = await _call(
                http, "PUT", f"/api/dot-devices/{device_id}", token, {"boundAgentId": agent_two}
            )
            assert rebound["device"]["boundAgentId"] == agent_two
            await runtime_b.wait_for(
                lambda: runtime_b.refreshed(device_id) > before, 30 * T, "the config refresh"
            )

            second = await device.turn(utterance, reply_timeout=90 * T)
            assert device.connection is connection and device.connected, "no reconnect"
            assert connection.session_id == session_id
            assert second.sentences == ["Model fake-two speaking."], second

    assert llm.models == ["fake-one", "fake-two"]
    # Runtime A heard every NOTIFY too, but does not hold the device: nothing to do.
    assert runtime_a.refreshed(device_id) == 0
    # SIGTERM drained both gracefully (uvicorn re-raises the signal once done,
    # hence -SIGTERM, which containers report as exit code 143).
    for runtime in (runtime_a, runtime_b):
        assert runtime.process.returncode in (0, -signal.SIGTERM), runtime.lines[-30:]
        assert any("Application shutdown complete" in line for line in runtime.lines)
