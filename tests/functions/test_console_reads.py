"""Reads the console needs beyond the original API: an agent as it was at a
version (for the diff before a restore), the providers each stage may name,
and the agent version a Dot runs."""

from __future__ import annotations

from tests.functions.conftest import AppFactory, auth, signup


async def test_version_content_provider_options_and_bound_version(make_client: AppFactory) -> None:
    client = await make_client()
    user = await signup(client)
    headers = auth(user)
    agent = (await client.post("/api/agents", json={"name": "Versioned"}, headers=headers)).json()[
        "agent"
    ]
    stages = {s["id"]: s for s in agent["pipeline"]}
    assert stages["vad"]["providerOptions"] == ["silero", "deepgram", "azure"]
    assert stages["llm"]["providerOptions"] == ["openai", "echo"]
    llm = dict(stages["llm"], provider="echo")
    edited = await client.put(
        f"/api/agents/{agent['id']}",
        json={
            "name": "Versioned two",
            "pipeline": [llm if s["id"] == "llm" else s for s in agent["pipeline"]],
        },
        headers=headers,
    )
    assert edited.status_code == 200 and edited.json()["agent"]["version"] == 2

    first = await client.get(f"/api/agents/{agent['id']}/versions/1", headers=headers)
    assert first.status_code == 200, first.text
    old = first.json()["agent"]
    assert (old["version"], old["name"]) == (1, "Versioned")
    assert {s["id"]: s["provider"] for s in old["pipeline"]}["llm"] == "openai"
    missing = await client.get(f"/api/agents/{agent['id']}/versions/9", headers=headers)
    assert missing.status_code == 404 and missing.json() == {"error": "Agent version not found."}
    stranger = await signup(client)
    hidden = await client.get(f"/api/agents/{agent['id']}/versions/1", headers=auth(stranger))
    assert hidden.status_code == 404

    device = (
        await client.post(
            "/api/dot-devices", json={"name": "Desk", "serialNumber": "SN-V"}, headers=headers
        )
    ).json()["device"]
    assert device["boundAgentVersion"] is None
    url = f"/api/dot-devices/{device['id']}"
    pinned = await client.put(url, json={"boundAgentId": agent["id"]}, headers=headers)
    assert pinned.json()["device"]["boundAgentVersion"] == 2
    await client.put(f"/api/agents/{agent['id']}", json={"description": "three"}, headers=headers)
    still = (await client.get(url, headers=headers)).json()["device"]
    assert (still["boundAgentVersion"], still["followLatest"]) == (2, False)
    following = await client.put(url, json={"followLatest": True}, headers=headers)
    assert following.json()["device"]["boundAgentVersion"] == 3
    state = (await client.get("/api/platform-state", headers=headers)).json()
    assert state["devices"][0]["boundAgentVersion"] == 3


async def test_a_refused_timezone_reads_as_one_sentence(make_client: AppFactory) -> None:
    client = await make_client()
    user = await signup(client)
    answer = await client.put(
        "/api/settings", json={"timezone": "Mars/Olympus"}, headers=auth(user)
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "timezone must be an IANA time zone name, such as Europe/Zurich."
    }
