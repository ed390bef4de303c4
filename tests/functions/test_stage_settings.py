"""Stage settings through the real API (issue 11): a setting a stage does not have is
refused by name instead of vanishing on save, and every cloud speech stage has the
`base_url` / `api_key_name` pair the LLM stage has."""

from __future__ import annotations

from typing import Any

import httpx

from shared.agent_config import default_stages
from tests.functions.conftest import auth, signup


async def _agent(client: httpx.AsyncClient, user: dict[str, str]) -> dict[str, Any]:
    created = await client.post("/api/agents", headers=auth(user), json={"name": "Speech"})
    assert created.status_code == 201, created.text
    agent: dict[str, Any] = created.json()["agent"]
    return agent


def _values(agent: dict[str, Any], stage_id: str) -> dict[str, Any]:
    stage = next(s for s in agent["pipeline"] if s["id"] == stage_id)
    return {s["key"]: s["value"] for s in stage["settings"]}


async def test_deepgram_stages_keep_their_base_url_and_key_name(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    agent = await _agent(client, user)
    url = f"/api/agents/{agent['id']}"
    compact = [
        {
            "id": "stt",
            "provider": "deepgram",
            "settings": {"base_url": "https://dg.example.com", "api_key_name": "MY_DG_KEY"},
        },
        {
            "id": "tts",
            "provider": "azure",
            "settings": {"base_url": "wss://speech.example.com/tts", "api_key_name": "AZ"},
        },
    ]
    saved = await client.put(url, headers=auth(user), json={"pipeline": compact})
    assert saved.status_code == 200, saved.text
    again = (await client.get(url, headers=auth(user))).json()["agent"]
    assert _values(again, "stt")["base_url"] == "https://dg.example.com"
    assert _values(again, "stt")["api_key_name"] == "MY_DG_KEY"
    assert _values(again, "tts")["base_url"] == "wss://speech.example.com/tts"
    assert _values(again, "tts")["api_key_name"] == "AZ"
    # The console PUTs whole descriptors back: that still saves, and changes nothing.
    same = await client.put(url, headers=auth(user), json={"pipeline": again["pipeline"]})
    assert same.status_code == 200 and same.json()["agent"]["version"] == again["version"]


async def test_a_setting_the_stage_does_not_have_is_refused_by_name(
    client: httpx.AsyncClient,
) -> None:
    user = await signup(client)
    agent = await _agent(client, user)
    url = f"/api/agents/{agent['id']}"
    typo = await client.put(
        url,
        headers=auth(user),
        json={"pipeline": [{"id": "stt", "settings": {"base_urll": "https://dg.example.com"}}]},
    )
    assert typo.status_code == 400
    error = typo.json()["error"]
    assert "'base_urll'" in error and "stt" in error and "base_url" in error
    stages = default_stages()
    next(s for s in stages if s["id"] == "tts")["settings"].append(
        {"key": "voice_speed", "value": "fast", "control": "text"}
    )
    extra = await client.put(url, headers=auth(user), json={"pipeline": stages})
    assert extra.status_code == 400
    assert extra.json()["error"].startswith("The tts stage has no setting 'voice_speed'")
    unknown = await client.put(url, headers=auth(user), json={"pipeline": [{"id": "asr"}]})
    assert unknown.status_code == 400
    assert (
        unknown.json()["error"]
        == "'asr' is not a pipeline stage; the stages are vad, stt, llm, tts."
    )
    twice = await client.put(
        url, headers=auth(user), json={"pipeline": [{"id": "stt"}, {"id": "stt"}]}
    )
    assert twice.status_code == 400 and "twice" in twice.json()["error"]
    # Nothing half-written: the agent is as it was.
    current = (await client.get(url, headers=auth(user))).json()["agent"]
    assert current["version"] == agent["version"]


async def test_the_original_consoles_stages_still_save(client: httpx.AsyncClient) -> None:
    """Its display names as providers and its legacy flag keys are not unknown settings."""
    user = await signup(client)
    agent = await _agent(client, user)
    legacy = [
        {
            "id": "vad",
            "provider": "Deepgram",
            "settings": [
                {"key": "endpointing", "value": "900"},
                {"key": "vad_events", "value": True},
                {"key": "interim_results", "value": False},
            ],
        },
        {
            "id": "llm",
            "provider": "OpenAI Compatible Endpoint",
            "settings": [{"key": "stream", "value": True}],
        },
    ]
    saved = await client.put(
        f"/api/agents/{agent['id']}", headers=auth(user), json={"pipeline": legacy}
    )
    assert saved.status_code == 200, saved.text
    assert _values(saved.json()["agent"], "vad")["features"] == ["vad_events"]
