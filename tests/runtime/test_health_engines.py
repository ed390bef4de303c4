"""/health says whether the offline engines are loaded (what `opendot up` waits for)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from runtime import composition
from runtime.app import RuntimeApp, create_app
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import test_settings as runtime_settings


async def _engines(app: RuntimeApp) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runtime.test") as http:
        response = await http.get("/health")
    assert response.status_code == 200
    engines: dict[str, Any] = response.json()["engines"]
    return engines


async def test_health_reports_loading_then_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def slow_warm() -> list[str]:
        assert release.wait(10 * TEST_TIME_UNIT)
        return ["silero", "whisper"]

    monkeypatch.setattr(composition, "warm_local_engines", slow_warm)
    app = create_app(runtime_settings(RUNTIME_WARM_LOCAL_ENGINES=True))
    async with app.http.router.lifespan_context(app.http):
        assert await _engines(app) == {"state": "loading", "loaded": []}
        release.set()
        for _ in range(int(200 * TEST_TIME_UNIT)):
            if (await _engines(app))["state"] == "ready":
                break
            await asyncio.sleep(0.01)
        assert await _engines(app) == {"state": "ready", "loaded": ["silero", "whisper"]}


async def test_a_failed_warm_up_still_ends_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> list[str]:
        raise RuntimeError("no local extra")

    monkeypatch.setattr(composition, "warm_local_engines", broken)
    app = create_app(runtime_settings(RUNTIME_WARM_LOCAL_ENGINES=True))
    async with app.http.router.lifespan_context(app.http):
        for _ in range(int(200 * TEST_TIME_UNIT)):
            if (await _engines(app))["state"] == "ready":
                break
            await asyncio.sleep(0.01)
        assert await _engines(app) == {"state": "ready", "loaded": []}


async def test_no_preloading_says_off() -> None:
    app = create_app(runtime_settings(RUNTIME_WARM_LOCAL_ENGINES=False))
    # Served with its lifespan, as uvicorn does (without it nothing flushes records,
    # and /health says so).
    async with app.http.router.lifespan_context(app.http):
        assert await _engines(app) == {"state": "off", "loaded": []}
