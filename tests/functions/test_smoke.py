"""First contact: health, signup, platform state."""

from __future__ import annotations

import httpx

from tests.functions.conftest import auth, signup


async def test_health_and_state(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/health")).json() == {"ok": True}
    user = await signup(client)
    state = await client.get("/api/platform-state", headers=auth(user))
    assert state.status_code == 200, state.text
    body = state.json()
    assert body["agents"] == [] and body["devices"] == [] and body["apiKeys"] == []
    assert body["userSettings"]["email"] == user["email"]
