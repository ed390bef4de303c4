"""Helpers for runtime tests against the real platform API: a runtime wired to
it, device provisioning the way a Dot does it (OTA through the runtime, claim
in the API, activation), agents and bindings through the public endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from runtime.pipeline.interfaces import Pipeline
from tests.conftest import TEST_TIME_UNIT
from tests.functions.conftest import INTERNAL_SECRET, auth, internal_headers, signup
from tests.runtime.harness import RunningRuntime, running_runtime

T = TEST_TIME_UNIT


@contextlib.asynccontextmanager
async def runtime_on_api(
    pipeline: Callable[[Mapping[str, Any] | None], Pipeline], api_app: Any, **settings: Any
) -> AsyncIterator[RunningRuntime]:
    """The real runtime (uvicorn) whose internal API is the real platform API."""
    async with running_runtime(
        pipeline,
        api_transport=httpx.ASGITransport(app=api_app),
        PLATFORM_API_INTERNAL_URL="http://api.test/api",
        OPENDOT_RUNTIME_INTERNAL_SECRET=INTERNAL_SECRET,
        **settings,
    ) as rt:
        yield rt


@dataclass
class Provisioned:
    user: dict[str, str]
    device_id: str  # the platform uuid
    token: str  # od_dt_...
    mac: str


async def provision_device(
    api: httpx.AsyncClient, rt: RunningRuntime, user: dict[str, str] | None = None
) -> Provisioned:
    """OTA through the runtime, claim through the API, activation through the runtime."""
    mac = "02:00:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:4])
    headers = {
        "Device-Id": mac,
        "Client-Id": str(uuid.uuid4()),
        "User-Agent": "bread-compact-wifi/1.7.6",
        "Activation-Version": "1",
    }
    user = user or await signup(api)
    async with httpx.AsyncClient(base_url=rt.http_base) as http:
        ota = await http.post("/ota/", headers=headers, json={"board": {"type": "dot"}})
        assert ota.status_code == 200, ota.text
        body = ota.json()
        code, token = body["activation"]["code"], body["websocket"]["token"]
        claim = await api.post(
            "/api/device-activations/claim", headers=auth(user), json={"code": code}
        )
        assert claim.status_code == 201, claim.text
        done = await http.post("/ota/activate", headers=headers, json={})
        assert done.status_code == 200, done.text
    return Provisioned(user, str(claim.json()["device"]["id"]), token, mac)


async def create_agent(
    api: httpx.AsyncClient, user: dict[str, str], name: str, pipeline: list[Any] | None = None
) -> str:
    created = await api.post("/api/agents", headers=auth(user), json={"name": name})
    assert created.status_code == 201, created.text
    agent_id = str(created.json()["agent"]["id"])
    if pipeline is not None:
        updated = await api.put(
            f"/api/agents/{agent_id}", headers=auth(user), json={"pipeline": pipeline}
        )
        assert updated.status_code == 200, updated.text
    return agent_id


async def bind(api: httpx.AsyncClient, user: dict[str, str], device_id: str, agent_id: str) -> None:
    response = await api.put(
        f"/api/dot-devices/{device_id}", headers=auth(user), json={"boundAgentId": agent_id}
    )
    assert response.status_code == 200, response.text
    assert response.json()["device"]["boundAgentId"] == agent_id


async def reset_memory_internally(api: httpx.AsyncClient, device_id: str) -> None:
    response = await api.post(
        "/api/internal/device-runtime/memory/reset",
        headers=internal_headers(),
        json={"deviceId": device_id},
    )
    assert response.status_code == 200, response.text


async def records_flushed(rt: RunningRuntime) -> None:
    for _ in range(int(200 * T)):
        if not rt.app.ctx.records.pending:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("records were not flushed")


async def eventually(condition: Callable[[], bool], within: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while loop.time() < end:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {within:.1f} s")
