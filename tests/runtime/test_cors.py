"""The runtime's /health answers the console's origins (CORS), and no other."""

from __future__ import annotations

import httpx

from runtime.app import create_app
from runtime.settings import RuntimeSettings


async def test_health_answers_listed_origins_only() -> None:
    settings = RuntimeSettings(  # type: ignore[call-arg]
        _env_file=None, OPENDOT_CORS_ORIGINS="http://console.test", WARM_LOCAL_ENGINES=False
    )
    app = create_app(settings, readiness=lambda: {"local": True})
    # With its lifespan, as served (without it no record is flushed and /health says so).
    async with (
        app.http.router.lifespan_context(app.http),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://runtime.test"
        ) as client,
    ):
        allowed = await client.get("/health", headers={"Origin": "http://console.test"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://console.test"
        other = await client.get("/health", headers={"Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in other.headers
