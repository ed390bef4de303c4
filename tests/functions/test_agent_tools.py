"""The agent's versioned `tools` block through the API: stored, returned, restored,
and refused with a sentence a person understands."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.tools_config import default_tools, normalize_tools, tools_problem
from tests.functions.conftest import auth, signup

WEBHOOK: dict[str, Any] = {
    "name": "open_garage",
    "description": "Opens the garage door.",
    "parameters": {"type": "object", "properties": {"door": {"type": "integer"}}},
    "url": "https://hooks.example.com/garage",
    "method": "POST",
    "headers": [{"name": "X-Token", "secret": "GARAGE_TOKEN"}, {"name": "X-Site", "value": "home"}],
}


async def test_tools_block_is_versioned_with_the_agent(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    created = await client.post("/api/agents", headers=auth(user), json={"name": "Doer"})
    agent = created.json()["agent"]
    assert agent["tools"] == default_tools()
    url = f"/api/agents/{agent['id']}"
    tools = {
        **default_tools(),
        "webhooks": [WEBHOOK],
        "filler": {"enabled": True, "text": "One moment."},
        "device": {"enabled": True, "allowUserOnly": ["self.reboot"], "deny": []},
    }
    changed = await client.put(url, headers=auth(user), json={"tools": tools})
    assert changed.status_code == 200, changed.text
    body = changed.json()["agent"]
    assert body["version"] == 2 and body["tools"]["webhooks"] == [WEBHOOK]
    assert body["tools"]["device"]["allowUserOnly"] == ["self.reboot"]
    same = await client.put(url, headers=auth(user), json=body)  # the console PUTs it all back
    assert same.json()["agent"]["version"] == 2
    restored = await client.post(f"{url}/versions/1/restore", headers=auth(user))
    assert restored.json()["agent"]["tools"]["webhooks"] == []
    assert restored.json()["agent"]["version"] == 3


@pytest.mark.parametrize(
    ("tools", "sentence"),
    [
        ({"maxCallsPerTurn": 0}, "tools maxCallsPerTurn must be a number from 1 to 20."),
        ({"version": 2}, "tools version 2 is not supported (this platform reads version 1)."),
        (
            {"webhooks": [{**WEBHOOK, "url": "http://hooks.example.com/x"}]},
            "webhook open_garage url must start with https:// "
            "(plain http only for a local service).",
        ),
        (
            {
                "webhooks": [
                    {**WEBHOOK, "headers": [{"name": "Authorization", "value": "Bearer x"}]}
                ]
            },
            "webhook open_garage header Authorization must name a stored secret "
            "instead of holding the value.",
        ),
        (
            {"webhooks": [{**WEBHOOK, "parameters": {"type": "string"}}]},
            'webhook open_garage parameters must describe an object: its "type" must be "object".',
        ),
        (
            {"webhooks": [WEBHOOK, WEBHOOK]},
            "webhook open_garage is defined twice; tool names must be unique.",
        ),
        (
            {"builtins": {"weather": True}},
            "tools builtins has no 'weather'; the built-ins are "
            "datetime, deviceStatus, endConversation, memory.",
        ),
        (
            {
                "mcpServers": [
                    {"name": "m", "url": "https://mcp.example.com/mcp", "bearerSecret": "bad name"}
                ]
            },
            "MCP server m bearerSecret must be the name of one of your stored secrets.",
        ),
    ],
)
async def test_invalid_tools_are_refused_with_a_sentence(
    client: httpx.AsyncClient, tools: dict[str, Any], sentence: str
) -> None:
    user = await signup(client)
    agent = (await client.post("/api/agents", headers=auth(user), json={"name": "A"})).json()[
        "agent"
    ]
    response = await client.put(
        f"/api/agents/{agent['id']}", headers=auth(user), json={"tools": tools}
    )
    assert response.status_code == 400
    assert response.json() == {"error": sentence}
    after = await client.get(f"/api/agents/{agent['id']}", headers=auth(user))
    assert after.json()["agent"]["version"] == 1  # nothing half-written


def test_problems_and_lenient_reading() -> None:
    assert tools_problem([]) == "tools must be an object."
    assert tools_problem({"webhooks": [{**WEBHOOK, "url": "http://127.0.0.1:9/x"}]}) is None
    assert tools_problem({"filler": {"text": ""}}) is not None
    assert tools_problem({"vision": {"baseUrl": "ftp://x"}}) is not None
    assert tools_problem({"device": {"deny": "self.reboot"}}) is not None
    assert tools_problem({"webhooks": [{**WEBHOOK, "headers": [{"name": "Host", "value": "x"}]}]})
    kept = normalize_tools(
        {
            "maxCallsPerTurn": True,
            "webhooks": [WEBHOOK, {"name": "broken"}],
            "builtins": {"memory": False, "x": True},
            "device": {"deny": ["a", 3]},
        }
    )
    assert kept["maxCallsPerTurn"] == 5 and [w["name"] for w in kept["webhooks"]] == ["open_garage"]
    assert kept["builtins"]["memory"] is False and "x" not in kept["builtins"]
    assert kept["device"]["deny"] == ["a"]
    assert normalize_tools(None) == default_tools()
