"""The runtime's HTTP edges on a real socket: CORS for the console, body limits,
keep-alive, the py-xiaozhi activation body, the record flusher in /health and
/metrics, and the provider clients closed at shutdown (issue 11)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from runtime.pipeline.doubles import double_pipeline
from runtime.providers.http import shared_client
from runtime.server import build_config
from runtime.settings import RuntimeSettings
from runtime.tools import vision
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import FakePlatform, running_runtime
from tests.runtime.harness import test_settings as runtime_settings

T = TEST_TIME_UNIT
CONSOLE = "http://localhost:5173"


def _pipeline(_agent: Any) -> Any:
    return double_pipeline()


async def test_the_console_origin_may_read_health_and_preflight_is_answered() -> None:
    async with (
        running_runtime(_pipeline, FakePlatform()) as rt,
        httpx.AsyncClient(base_url=rt.http_base) as http,
    ):
        preflight = await http.options(
            "/health",
            headers={
                "Origin": CONSOLE,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == CONSOLE
        assert "GET" in preflight.headers["access-control-allow-methods"]
        health = await http.get("/health", headers={"Origin": CONSOLE})
        assert health.status_code == 200 and health.json()["ok"] is True
        assert health.headers["access-control-allow-origin"] == CONSOLE
        # An origin nobody listed gets no grant, and there is never a wildcard.
        stranger = await http.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers
        refused = await http.options(
            "/health",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert refused.status_code == 400
        assert refused.headers.get("access-control-allow-origin") != "*"


async def test_the_allow_list_is_the_api_setting() -> None:
    settings = {"OPENDOT_CORS_ORIGINS": "https://console.example.com/, http://127.0.0.1:9000"}
    async with (
        running_runtime(_pipeline, FakePlatform(), **settings) as rt,
        httpx.AsyncClient(base_url=rt.http_base) as http,
    ):
        ok = await http.get("/health", headers={"Origin": "https://console.example.com"})
        assert ok.headers["access-control-allow-origin"] == "https://console.example.com"
        old = await http.get("/health", headers={"Origin": CONSOLE})
        assert "access-control-allow-origin" not in old.headers


async def _chunks(total: int, piece: int = 4096) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(piece, total - sent)
        sent += piece


async def test_bodies_over_the_limit_get_413_with_a_sentence_ota_included() -> None:
    platform = FakePlatform()
    limit = 2048
    async with (
        running_runtime(_pipeline, platform, RUNTIME_MAX_BODY_BYTES=limit) as rt,
        httpx.AsyncClient(base_url=rt.http_base) as http,
    ):
        headers = {"Device-Id": "aa:bb:cc:dd:ee:02", "Origin": CONSOLE}
        # Declared too large: refused before a byte of the body is read.
        big = await http.post("/ota/", content=b"{" + b" " * limit + b"}", headers=headers)
        assert big.status_code == 413
        assert big.json() == {
            "error": f"The request body is larger than the {limit} bytes this runtime accepts."
        }
        assert big.headers["access-control-allow-origin"] == CONSOLE  # the console can read it
        # No length declared (chunked): counted as it streams and cut off at the limit.
        # (Small enough to fit the socket buffers: an HTTP/1.1 client reads the answer
        # only once it has sent its body, and the server stops reading at the limit.)
        streamed = await http.post("/ota/activate", content=_chunks(4 * limit), headers=headers)
        assert streamed.status_code == 413
        assert "bytes this runtime accepts" in streamed.json()["error"]
        assert platform.bootstraps == [] and platform.activations == []
        # Within the limit the OTA proxy works as before.
        system_info = {"application": {"version": "1.0.0"}, "board": {"type": "test"}}
        ok = await http.post("/ota/", json=system_info, headers=headers)
        assert ok.status_code == 200 and ok.json()["websocket"]["url"].endswith("/ws")
        assert platform.bootstraps[-1]["systemInfo"] == system_info
        # The camera upload bounds its own body (2 MiB, in the firmware's answer format).
        photo = await http.post(vision.PATH, content=b"\xff" * (4 * limit))
        assert photo.status_code == 401 and photo.json()["success"] is False


async def test_ota_bodies_are_cleaned_before_they_reach_the_api() -> None:
    platform = FakePlatform()
    async with (
        running_runtime(_pipeline, platform) as rt,
        httpx.AsyncClient(base_url=rt.http_base) as http,
    ):
        body = b'{"board":{"ssid":"cafe\\ud800\\u0000"},"application":{"version":"1"}}'
        ok = await http.post("/ota/", content=body, headers={"Device-Id": "aa:bb:cc:dd:ee:03"})
        assert ok.status_code == 200
        assert platform.bootstraps[-1]["systemInfo"]["board"]["ssid"] == "cafe\ufffd"


async def test_py_xiaozhi_activation_payload_reaches_the_api() -> None:
    """The exact request py-xiaozhi's DeviceActivator sends (src/utils/device_activator.py)."""
    platform = FakePlatform()
    body = {
        "Payload": {
            "algorithm": "hmac-sha256",
            "serial_number": "SN-5C3A7F19-a1b2c3d4e5f6",
            "challenge": "4f6e2c1d-challenge",
            "hmac": "9b1c" * 16,
        }
    }
    headers = {
        "Activation-Version": "2",
        "Device-Id": "a1:b2:c3:d4:e5:f6",
        "Client-Id": "0b5c4d8e-1f2a-4c3b-9d8e-7f6a5b4c3d2e",
        "Content-Type": "application/json",
    }
    async with (
        running_runtime(_pipeline, platform) as rt,
        httpx.AsyncClient(base_url=rt.http_base) as http,
    ):
        answer = await http.post("/ota/activate", content=json.dumps(body), headers=headers)
        assert answer.status_code == 202
        bare = await http.post("/ota/activate", json=body["Payload"], headers=headers)
        assert bare.status_code == 202
    wrapped, firmware = platform.activations
    for forwarded in (wrapped, firmware):
        assert forwarded["serialNumber"] == "SN-5C3A7F19-a1b2c3d4e5f6"
        assert forwarded["algorithm"] == "hmac-sha256"
        assert forwarded["challenge"] == "4f6e2c1d-challenge"
        assert forwarded["hmac"] == "9b1c" * 16
        assert forwarded["deviceId"] == "a1:b2:c3:d4:e5:f6"


def test_idle_connections_outlive_every_client_poll() -> None:
    config = build_config(object(), runtime_settings())  # type: ignore[arg-type]
    # py-xiaozhi polls activation every 5 s, the firmware every 3 s; an ALB idles 60 s.
    assert config.timeout_keep_alive == RuntimeSettings.model_fields["keep_alive_s"].default
    assert config.timeout_keep_alive > 60
    shorter = build_config(object(), runtime_settings(RUNTIME_KEEP_ALIVE_S=7))  # type: ignore[arg-type]
    assert shorter.timeout_keep_alive == 7


async def test_health_and_metrics_report_a_dead_or_stuck_record_flusher() -> None:
    hang = asyncio.Event()
    platform = FakePlatform()
    inner = httpx.ASGITransport(app=platform.app())

    class Hanging(httpx.AsyncBaseTransport):
        """The API accepts the connection and then never answers records."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/runtime/records") and hang.is_set():
                await asyncio.Event().wait()
            return await inner.handle_async_request(request)

    async with (
        running_runtime(
            _pipeline, api_transport=Hanging(), RUNTIME_RECORDS_STUCK_AFTER_S=0.2 * T
        ) as rt,
        httpx.AsyncClient(base_url=rt.http_base) as http,
    ):
        healthy = await http.get("/health")
        assert healthy.status_code == 200
        assert healthy.json()["records"]["state"] == "running"
        assert "opendot_records_flusher_up 1" in (await http.get("/metrics")).text
        records = rt.app.ctx.records
        hang.set()
        event = {"id": str(uuid.uuid4()), "sessionId": str(uuid.uuid4()), "kind": "probe"}
        records.add_event({**event, "payload": {}})
        for _ in range(int(200 * T)):
            if records.status()["state"] == "stuck":
                break
            await asyncio.sleep(0.02)
        stuck = await http.get("/health")
        assert stuck.status_code == 503
        assert stuck.json()["ok"] is False and stuck.json()["records"]["state"] == "stuck"
        assert "opendot_records_flusher_up 0" in (await http.get("/metrics")).text
        # A flusher that is gone (whatever killed it) is reported the same way.
        task = records.start()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        dead = await http.get("/health")
        assert dead.status_code == 503 and dead.json()["records"]["state"] == "dead"
        hang.clear()


async def test_the_shared_provider_clients_close_at_shutdown() -> None:
    async with running_runtime(_pipeline, FakePlatform()):
        # What a session's cloud provider would have opened on the server's loop.
        clients = [shared_client(allow_private=False), shared_client(allow_private=True)]
        assert not any(c.is_closed for c in clients)
    assert all(c.is_closed for c in clients)


async def test_a_lone_surrogate_in_a_browser_body_is_a_refusal_not_a_crash() -> None:
    async with (
        running_runtime(_pipeline, FakePlatform()) as rt,
        httpx.AsyncClient(base_url=rt.http_base) as http,
    ):
        answer = await http.post(
            "/realtime/client-secret",
            content=b'{"token":"od_vt_\\ud800"}',
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 401, answer.text
    assert "invalid" in answer.json()["error"]
