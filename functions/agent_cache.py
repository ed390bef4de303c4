"""Normalised agent content, kept per immutable agent version (a bounded LRU).

An agent version row and the pipeline version it points at are append-only
(`authenticated` may only select and insert them), so what the console shows
for a version id (its architecture, realtime block and pipeline, normalised
against the current defaults and shaped by `VoiceAgent`) can never change in
this process. Normalising and validating a pipeline costs far more than
reading it (about half a millisecond per agent), so `GET /api/platform-state`
pays it once per version instead of once per agent per request.

Entries are only ever looked up with version ids that the request's own query
returned under RLS, so the cache cannot reveal one user's content to another.
Each app instance owns its own cache (tests run several databases in one
process, and their seed ids could coincide). Values are shared between
requests and must be treated as read-only.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_json

from functions.models import VoiceAgent
from shared import agent_config

DEFAULT_MAX_VERSIONS = 512  # a few KiB each: a couple of MiB at most


@dataclass(frozen=True, slots=True)
class AgentContent:
    """The version-dependent part of a public VoiceAgent, as JSON-ready values and as JSON.

    `architecture_realtime_json` is `"architecture":...,"realtime":{...},"tools":{...}`
    (three members, no braces) and `pipeline_json` the array: the pieces
    `functions.state_store` splices into the response.
    """

    architecture: str
    realtime: dict[str, Any]
    pipeline: list[dict[str, Any]]
    architecture_realtime_json: bytes
    pipeline_json: bytes


def content_of(
    agent_manifest: dict[str, Any] | None, pipeline_manifest: dict[str, Any] | None
) -> AgentContent:
    """What `agents_store.agent_json` and `VoiceAgent` make of these manifests."""
    manifest = agent_manifest or {}
    normalised = agent_config.normalize_agent(
        {
            "architecture": manifest.get("architecture"),
            "realtime": manifest.get("realtime"),
            "tools": manifest.get("tools"),
            "pipeline": (pipeline_manifest or {}).get("stages"),
        }
    )
    # Validate through the response model itself, so defaults it fills in and
    # the order of extra keys match what the per-resource endpoints return.
    placeholder = {
        "id": "",
        "name": "",
        "description": "",
        "status": "",
        "version": 0,
        "createdAt": "",
        "updatedAt": "",
    }
    dumped = VoiceAgent.model_validate({**placeholder, **normalised}).model_dump(mode="json")
    members = to_json(
        {
            "architecture": dumped["architecture"],
            "realtime": dumped["realtime"],
            "tools": dumped["tools"],
        }
    )
    return AgentContent(
        dumped["architecture"],
        dumped["realtime"],
        dumped["pipeline"],
        members[1:-1],
        to_json(dumped["pipeline"]),
    )


class AgentContentCache:
    def __init__(self, max_versions: int = DEFAULT_MAX_VERSIONS) -> None:
        self.max_versions = max_versions
        self._items: OrderedDict[str, AgentContent] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, version_id: str) -> AgentContent | None:
        found = self._items.get(version_id)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(version_id)
        return found

    def put(self, version_id: str, content: AgentContent) -> None:
        self._items[version_id] = content
        self._items.move_to_end(version_id)
        while len(self._items) > self.max_versions:
            self._items.popitem(last=False)
