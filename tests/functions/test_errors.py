"""Error shapes, CORS, and unknown routes."""

from __future__ import annotations

import httpx

from tests.functions.conftest import auth, signup


async def test_errors_are_one_sentence_with_the_right_status(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    cases = [
        (await client.get("/api/nope", headers=auth(user)), 404),
        (await client.delete("/api/platform-state", headers=auth(user)), 405),
        (await client.post("/api/agents", headers=auth(user), content=b"{oops"), 400),
        (await client.post("/api/agents", headers=auth(user), json=[1, 2]), 400),
        (await client.post("/api/agents", headers=auth(user), json={"name": "x" * 500}), 400),
        (await client.put("/api/agents/not-a-uuid", headers=auth(user), json={}), 404),
        (await client.post("/api/api-keys/nope/revoke", headers=auth(user)), 404),
        (await client.get("/api/platform-state", headers={"Authorization": "Basic abc"}), 401),
        (await client.get("/api/platform-state", headers={"Authorization": "Bearer x.y.z"}), 401),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.request.url, response.text)
        body = response.json()
        assert list(body) == ["error"] and body["error"].endswith("."), body


async def test_cors_allows_only_configured_origins(client: httpx.AsyncClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = await client.options(
        "/api/agents/x", headers={"Origin": "http://console.test", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://console.test"
    denied = await client.options(
        "/api/agents/x", headers={"Origin": "http://evil.test", **preflight}
    )
    assert "access-control-allow-origin" not in denied.headers
    simple = await client.get("/api/auth/config", headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in simple.headers
