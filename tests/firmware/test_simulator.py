"""A simulated Dot follows an offered upgrade through the real runtime and API.

`opendot device simulate --firmware-version 1.0.0` boots, is offered 1.1.0,
downloads it from the runtime (local storage, signed link), checks size,
SHA-256 and the image's own version, "reboots" and reports 1.1.0, which
completes its rollout step. A download corrupted on the way is reported, not
installed, and retried on the next boot.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from functions.app import create_app
from opendot.cli import main
from runtime.pipeline.doubles import double_pipeline
from runtime.pipeline.interfaces import Pipeline
from runtime.simulator.device import SimulatedDevice
from runtime.simulator.identity import DeviceIdentity, DeviceStore
from shared.firmware.links import DownloadGrant, link_key, sign
from tests.conftest import TEST_TIME_UNIT
from tests.firmware.conftest import upload
from tests.functions.conftest import INTERNAL_SECRET, auth, make_settings
from tests.runtime.harness import RunningRuntime
from tests.runtime.platform_api import Provisioned, provision_device, runtime_on_api

T = TEST_TIME_UNIT


def _pipeline(_agent: Any) -> Pipeline:
    return double_pipeline("<chunk>Hello.</chunk>", "hello")


class Stack:
    def __init__(self, api: httpx.AsyncClient, rt: RunningRuntime, data_dir: Path) -> None:
        self.api, self.rt, self.data_dir = api, rt, data_dir

    async def dot_with_rollout(self, tmp_path: Path) -> tuple[Provisioned, dict[str, Any], Path]:
        dot = await provision_device(self.api, self.rt)
        release = (await upload(self.api, dot.user, "1.1.0", size=40_000)).json()["release"]
        created = await self.api.post(
            "/api/firmware/rollouts",
            json={"releaseId": release["id"], "percent": 100},
            headers=auth(dot.user),
        )
        assert created.status_code == 201, created.text
        state = tmp_path / f"devices-{uuid.uuid4().hex[:6]}"
        identity = DeviceIdentity(mac=dot.mac, firmware_version="1.0.0")
        identity.websocket["token"] = dot.token
        DeviceStore(state).save(identity)
        return dot, created.json()["rollout"], state

    async def rollout(self, dot: Provisioned, rollout_id: str) -> dict[str, Any]:
        response = await self.api.get(
            f"/api/firmware/rollouts/{rollout_id}", headers=auth(dot.user)
        )
        body: dict[str, Any] = response.json()["rollout"]
        return body


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("data")
    app = create_app(make_settings(database_url, OPENDOT_DATA_DIR=str(data_dir)))
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as api,
        runtime_on_api(_pipeline, app, OPENDOT_DATA_DIR=str(data_dir)) as rt,
    ):
        yield Stack(api, rt, data_dir)
    await app.state.services.db.close()


@pytest.mark.asyncio(loop_scope="module")
async def test_simulate_follows_an_offered_upgrade(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dot, rollout, state = await stack.dot_with_rollout(tmp_path)
    argv = [
        "device",
        "simulate",
        "--runtime-url",
        stack.rt.http_base,
        "--state-dir",
        str(state),
        "--mac",
        dot.mac,
        "--firmware-version",
        "1.0.0",
        "--turns",
        "0",
    ]
    code = await asyncio.to_thread(main, argv)
    output = capsys.readouterr().out
    assert code == 0, output
    assert "firmware 1.1.0 offered; downloading" in output
    assert "firmware 1.1.0 installed (40000 bytes); rebooting" in output
    assert "running firmware 1.1.0" in output
    assert DeviceStore(state).load(dot.mac).firmware_version == "1.1.0"  # type: ignore[union-attr]

    # The download report is a background task after the response: poll the counts.
    for _ in range(int(100 * T)):
        watched = await stack.rollout(dot, rollout["id"])
        if watched["counts"]["downloaded"]:
            break
        await asyncio.sleep(0.05)
    assert watched["counts"] == {"offered": 1, "downloaded": 1, "updated": 1, "stuck": 0}
    (entry,) = watched["devices"]
    assert entry["state"] == "updated" and entry["currentVersion"] == "1.1.0"
    device = await stack.api.get(f"/api/dot-devices/{dot.device_id}", headers=auth(dot.user))
    assert device.json()["device"]["firmwareVersion"] == "1.1.0"


class CorruptFirst(httpx.AsyncBaseTransport):
    """Flips one byte of the first firmware download, like a bad Wi-Fi link would."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.corrupted = 0
        self.downloads = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not request.url.path.startswith("/ota/firmware/"):
            return response
        self.downloads += 1
        body = await response.aread()
        await response.aclose()
        if self.corrupted == 0 and len(body) > 1000:
            self.corrupted += 1
            body = body[:1000] + bytes([body[1000] ^ 0xFF]) + body[1001:]
        return httpx.Response(response.status_code, headers=response.headers, content=body)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_corrupted_download_is_reported_and_retried_not_installed(
    stack: Stack, tmp_path: Path
) -> None:
    dot, rollout, state = await stack.dot_with_rollout(tmp_path)
    identity = DeviceStore(state).load(dot.mac)
    assert identity is not None
    lines: list[str] = []
    transport = CorruptFirst()
    async with httpx.AsyncClient(transport=transport, timeout=10 * T) as http:
        device = SimulatedDevice(
            stack.rt.http_base, identity, store=DeviceStore(state), http=http, report=lines.append
        )
        await device.provision(firmware_attempts=3)
    corrupt = [line for line in lines if "corrupted" in line]
    assert len(corrupt) == 1 and "SHA-256 does not match" in corrupt[0], lines
    assert "not installed" in corrupt[0]
    assert transport.downloads == 2
    assert identity.firmware_version == "1.1.0"
    (entry,) = (await stack.rollout(dot, rollout["id"]))["devices"]
    assert entry["state"] == "updated" and entry["offeredCount"] == 2


@pytest.mark.asyncio(loop_scope="module")
async def test_runtime_serves_ranges_and_only_genuine_unexpired_links(stack: Stack) -> None:
    dot = await provision_device(stack.api, stack.rt)
    release = (await upload(stack.api, dot.user, "3.0.0", size=9000)).json()["release"]
    key = link_key(INTERNAL_SECRET)
    rid = uuid.UUID(release["id"])
    good = sign(key, DownloadGrant(rid, None, None, int(time.time()) + 60))
    expired = sign(key, DownloadGrant(rid, None, None, int(time.time()) - 1))
    forged = sign(link_key("another secret"), DownloadGrant(rid, None, None, int(time.time()) + 60))
    stored = (stack.data_dir / "firmware" / f"{rid}.bin").read_bytes()
    async with httpx.AsyncClient(base_url=stack.rt.http_base) as http:
        whole = await http.get(f"/ota/firmware/{good}")
        assert whole.status_code == 200 and whole.content == stored
        assert whole.headers["content-length"] == "9000"
        part = await http.get(f"/ota/firmware/{good}", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == stored[100:200]
        for token in (expired, forged, good[:-2] + "AA", "garbage"):
            assert (await http.get(f"/ota/firmware/{token}")).status_code == 404
