"""GET /api/platform-state: one statement, cached agent content, same bytes as the resources.

The state is built by PostgreSQL and by a per-version cache rather than by the
pydantic models the per-resource endpoints use, so the main check compares it
byte for byte with `PlatformState` built from those endpoints' answers.
The database of this module runs in a non-UTC time zone on purpose: the
timestamps must still come out as JavaScript's `toISOString()`.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest

from functions.agent_cache import AgentContentCache, content_of
from functions.models import PlatformState
from functions.state_store import platform_state
from tests.functions.conftest import AppFactory, auth, internal_headers, signup


@pytest.fixture(scope="module", autouse=True)
def non_utc_database(database_url: str) -> None:
    async def alter() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            name = await conn.fetchval("select current_database()")
            await conn.execute(f"alter database \"{name}\" set timezone to 'America/St_Johns'")
        finally:
            await conn.close()

    asyncio.run(alter())


async def _resources(client: httpx.AsyncClient, user: dict[str, str]) -> bytes:
    """What PlatformState makes of the per-resource endpoints' answers."""
    headers = auth(user)
    agents = (await client.get("/api/agents", headers=headers)).json()["agents"]
    devices = (await client.get("/api/dot-devices", headers=headers)).json()["devices"]
    settings = (await client.get("/api/settings", headers=headers)).json()["settings"]
    keys = (await client.get("/api/api-keys", headers=headers)).json()["apiKeys"]
    state = PlatformState.model_validate(
        {"agents": agents, "devices": devices, "userSettings": settings, "apiKeys": keys}
    )
    return state.model_dump_json().encode()


async def _rich_account(client: httpx.AsyncClient, database_url: str) -> dict[str, str]:
    """Agents with edited pipelines and awkward text, devices in every binding state, keys."""
    user = await signup(client)
    headers = auth(user)
    names = ["Plain", 'Quote " and \\ backslash', "Ünïcødé ☎ 日本語", "Tab\tand\nnewline"]
    agents = []
    for name in names:
        created = await client.post(
            "/api/agents", json={"name": name, "description": f"about {name}"}, headers=headers
        )
        assert created.status_code == 201, created.text
        agents.append(created.json()["agent"])
    # A new version with changed stage settings and realtime block.
    edited = agents[0]
    pipeline = edited["pipeline"]
    for stage in pipeline:
        for setting in stage["settings"]:
            if isinstance(setting["value"], float):
                setting["value"] = 0.123456789
    updated = await client.put(
        f"/api/agents/{edited['id']}",
        json={"name": "Plain v2", "pipeline": pipeline, "realtime": {"voice": "verse"}},
        headers=headers,
    )
    assert updated.status_code == 200, updated.text
    devices = []
    for n in range(4):
        paired = await client.post(
            "/api/dot-devices",
            json={"name": f"Dot {n} ☎", "serialNumber": f"SN-{uuid.uuid4().hex[:8]}"},
            headers=headers,
        )
        assert paired.status_code == 201, paired.text
        devices.append(paired.json()["device"])
    bind = [
        (devices[0], {"boundAgentId": agents[0]["id"]}),
        (devices[1], {"boundAgentId": agents[1]["id"], "followLatest": True}),
        (devices[2], {"boundAgentId": agents[3]["id"]}),
        (devices[3], {"boundAgentId": agents[2]["id"], "followLatest": True}),
    ]
    for device, body in bind:
        answer = await client.put(f"/api/dot-devices/{device['id']}", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
    # The agent device 2 is bound to goes away: the device reads as unbound.
    assert (await client.delete(f"/api/agents/{agents[3]['id']}", headers=headers)).is_success
    state = await client.post(
        "/api/internal/device-runtime/state",
        json={"deviceId": devices[0]["id"], "availability": "offline"},
        headers=internal_headers(),
    )
    assert state.status_code == 200, state.text
    for n in range(3):
        key = await client.post("/api/api-keys", json={"name": f"key {n}"}, headers=headers)
        assert key.status_code == 201, key.text
    keys = (await client.get("/api/api-keys", headers=headers)).json()["apiKeys"]
    assert (await client.post(f"/api/api-keys/{keys[0]['id']}/revoke", headers=headers)).is_success
    conn = await asyncpg.connect(database_url)
    try:
        # One key expired a moment ago (the API only creates keys expiring in days).
        await conn.execute(
            "update public.api_keys set expires_at = now() - interval '1 second' where id = $1",
            uuid.UUID(keys[1]["id"]),
        )
        # An agent gone while its deployment is still active (not reachable through
        # the API, which removes deployments too): its device reads as unbound.
        await conn.execute(
            "update public.agents set deleted_at = now(), status = 'removed' where id = $1",
            uuid.UUID(agents[2]["id"]),
        )
    finally:
        await conn.close()
    settings = await client.put(
        "/api/settings",
        json={"displayName": "Zoë", "workspaceName": "Lab ☎", "compactMode": True},
        headers=headers,
    )
    assert settings.status_code == 200, settings.text
    return user


async def test_state_is_byte_identical_to_the_resources(
    client: httpx.AsyncClient, database_url: str
) -> None:
    user = await _rich_account(client, database_url)
    first = await client.get("/api/platform-state", headers=auth(user))
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    expected = await _resources(client, user)
    assert first.content == expected
    # Served from the cache the second time, still the same bytes.
    second = await client.get("/api/platform-state", headers=auth(user))
    assert second.content == expected
    body = first.json()
    assert [d["availability"] for d in body["devices"]].count("offline") == 1
    assert {k["status"] for k in body["apiKeys"]} == {"active", "revoked", "expired"}
    assert body["userSettings"]["displayName"] == "Zoë"
    assert body["agents"][0]["name"] == "Plain v2"  # most recently updated first
    assert body["agents"][0]["createdAt"].endswith("Z")


async def test_empty_account(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    state = await client.get("/api/platform-state", headers=auth(user))
    assert state.content == await _resources(client, user)
    assert state.json()["agents"] == [] and state.json()["devices"] == []


async def test_cache_follows_new_versions_and_never_crosses_users(
    make_client: AppFactory,
) -> None:
    client = await make_client()
    cache: AgentContentCache = client._transport.app.state.services.agent_cache  # type: ignore[attr-defined]
    alice, bob = await signup(client), await signup(client)
    created = await client.post("/api/agents", json={"name": "Mine"}, headers=auth(alice))
    agent = created.json()["agent"]
    await client.get("/api/platform-state", headers=auth(alice))
    assert len(cache) == 1 and cache.misses == 1
    await client.get("/api/platform-state", headers=auth(alice))
    assert cache.hits == 1
    # Bob's state never shows Alice's agent, though its content is cached.
    bob_state = (await client.get("/api/platform-state", headers=auth(bob))).json()
    assert bob_state["agents"] == []
    # A new version is a new cache entry; the state shows the new content.
    agent["realtime"]["voice"] = "ash"
    updated = await client.put(
        f"/api/agents/{agent['id']}", json={"realtime": agent["realtime"]}, headers=auth(alice)
    )
    assert updated.status_code == 200, updated.text
    state = (await client.get("/api/platform-state", headers=auth(alice))).json()
    assert state["agents"][0]["realtime"]["voice"] == "ash"
    assert state["agents"][0]["version"] == 2
    assert len(cache) == 2
    # Rolling back to version 1 makes a version 3 with version 1's content.
    restored = await client.post(
        f"/api/agents/{agent['id']}/versions/1/restore", headers=auth(alice)
    )
    assert restored.status_code == 200, restored.text
    state = (await client.get("/api/platform-state", headers=auth(alice))).json()
    assert state["agents"][0]["realtime"] == created.json()["agent"]["realtime"]
    assert state["agents"][0]["version"] == 3


async def test_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache = AgentContentCache(max_versions=2)
    content = content_of(None, None)
    cache.put("a", content)
    cache.put("b", content)
    assert cache.get("a") is content  # "a" is now the most recent
    cache.put("c", content)
    assert cache.get("b") is None
    assert cache.get("a") is content and cache.get("c") is content
    assert len(cache) == 2


async def test_state_is_filtered_by_rls_not_by_the_statement(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """The statement has no owner filter of its own: the role switch before it is what scopes it."""
    user = await signup(client)
    created = await client.post("/api/agents", json={"name": "Scoped"}, headers=auth(user))
    assert created.status_code == 201
    stranger = str(uuid.uuid4())
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "select set_config('request.jwt.claims', $1, true),"
                " set_config('role', 'authenticated', true)",
                json.dumps({"sub": stranger, "role": "authenticated"}),
            )
            scoped = json.loads(await platform_state(conn, stranger, AgentContentCache()))
        # As the login role (a superuser here) the same statement sees everyone's agents.
        unscoped = json.loads(await platform_state(conn, stranger, AgentContentCache()))
    finally:
        await conn.close()
    assert scoped["agents"] == [] and scoped["devices"] == [] and scoped["apiKeys"] == []
    assert scoped["userSettings"]["workspaceName"] == "OpenDot Lab"
    assert created.json()["agent"]["id"] in {a["id"] for a in unscoped["agents"]}


async def test_released_connections_carry_no_request_state(make_client: AppFactory) -> None:
    """The pool skips asyncpg's reset query; role and claims must still end with the request."""
    client = await make_client(OPENDOT_DB_POOL_MAX=1)
    user = await signup(client)
    assert (await client.get("/api/platform-state", headers=auth(user))).status_code == 200
    pool = await client._transport.app.state.services.db.pool()  # type: ignore[attr-defined]
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "select current_user as who, session_user as login,"
            " coalesce(current_setting('request.jwt.claims', true), '') as claims,"
            " pg_catalog.txid_current_if_assigned() as xid"
        )
    assert row["who"] == row["login"]
    assert row["claims"] == ""
