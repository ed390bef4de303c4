"""Agents: create with default stages, versioned updates, version list, rollback, soft delete."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from functions import agents_store as store
from functions.deps import Ctx, UserDb
from functions.errors import BadRequest, NotFound
from functions.models import (
    AgentCreate,
    AgentEnvelope,
    AgentList,
    AgentUpdate,
    AgentVersionList,
    Ok,
)
from shared import agent_config
from shared.tools_config import ToolsConfigError, validate_tools

router = APIRouter(prefix="/api/agents", tags=["agents"])

_NOT_FOUND = "Agent not found."


def _tools(raw: dict[str, Any]) -> dict[str, Any]:
    try:
        return validate_tools(raw)
    except ToolsConfigError as exc:
        raise BadRequest(str(exc)) from None


def _agent_id(raw: str) -> uuid.UUID:
    parsed = store.parse_uuid(raw)
    if parsed is None:
        raise NotFound(_NOT_FOUND)
    return parsed


async def _envelope(ctx: Ctx, agent_id: uuid.UUID) -> AgentEnvelope:
    agent = await store.get_agent(ctx.conn, agent_id)
    if agent is None:
        raise NotFound(_NOT_FOUND)
    return AgentEnvelope.model_validate({"agent": agent})


@router.get("", response_model=AgentList)
async def list_agents(ctx: UserDb) -> AgentList:
    return AgentList.model_validate({"agents": await store.list_agents(ctx.conn)})


@router.post("", status_code=201, response_model=AgentEnvelope)
async def create_agent(body: AgentCreate, ctx: UserDb) -> AgentEnvelope:
    name = body.name.strip()
    if not name:
        raise BadRequest("name is required.")
    agent_id = await store.create_agent(
        ctx.conn, ctx.user_id, name, body.description.strip(), body.architecture
    )
    return await _envelope(ctx, agent_id)


@router.get("/{agent_id}", response_model=AgentEnvelope)
async def get_agent(agent_id: str, ctx: UserDb) -> AgentEnvelope:
    return await _envelope(ctx, _agent_id(agent_id))


@router.put("/{agent_id}", response_model=AgentEnvelope)
async def update_agent(agent_id: str, body: AgentUpdate, ctx: UserDb) -> AgentEnvelope:
    parsed = _agent_id(agent_id)
    row = await store.fetch_row(ctx.conn, parsed, lock=True)
    if row is None:
        raise NotFound(_NOT_FOUND)
    current = row["agent_manifest"] or {}
    name = body.name.strip() if body.name and body.name.strip() else row["name"]
    manifest = store.agent_manifest(
        name,
        body.description.strip() if body.description is not None else row["description"],
        body.architecture or current.get("architecture"),
        body.realtime if body.realtime is not None else current.get("realtime"),
        _tools(body.tools) if body.tools is not None else current.get("tools"),
    )
    if body.pipeline is not None:
        try:
            # What the client sends is checked: a setting a stage does not have is
            # refused by name instead of vanishing on save.
            stages = agent_config.compact_pipeline(body.pipeline, strict=True)
        except agent_config.AgentConfigError as exc:
            raise BadRequest(str(exc)) from None
    else:
        stages = agent_config.compact_pipeline(row["pipeline_manifest"] or {})
    await store.write_version(ctx.conn, row, ctx.user_id, manifest, stages)
    return await _envelope(ctx, parsed)


@router.get("/{agent_id}/versions", response_model=AgentVersionList)
async def list_versions(agent_id: str, ctx: UserDb) -> AgentVersionList:
    parsed = _agent_id(agent_id)
    if await store.fetch_row(ctx.conn, parsed) is None:
        raise NotFound(_NOT_FOUND)
    versions = await store.list_versions(ctx.conn, parsed)
    return AgentVersionList.model_validate({"versions": versions})


@router.get("/{agent_id}/versions/{version}", response_model=AgentEnvelope)
async def get_version(agent_id: str, version: int, ctx: UserDb) -> AgentEnvelope:
    """The agent as it was at `version` (for comparing two versions before a restore)."""
    parsed = _agent_id(agent_id)
    row = await store.fetch_row(ctx.conn, parsed)
    if row is None:
        raise NotFound(_NOT_FOUND)
    content = await store.version_content(ctx.conn, parsed, version)
    if content is None:
        raise NotFound("Agent version not found.")
    manifest, pipeline = content
    merged = dict(row)
    merged["name"] = manifest.get("name", row["name"])
    merged["description"] = manifest.get("description", row["description"])
    agent = store.agent_json(merged, manifest, pipeline, version)
    return AgentEnvelope.model_validate({"agent": agent})


@router.post("/{agent_id}/versions/{version}/restore", response_model=AgentEnvelope)
async def restore_version(agent_id: str, version: int, ctx: UserDb) -> AgentEnvelope:
    """Roll back: the old version's content becomes a new, current version."""
    parsed = _agent_id(agent_id)
    row = await store.fetch_row(ctx.conn, parsed, lock=True)
    if row is None:
        raise NotFound(_NOT_FOUND)
    content = await store.version_content(ctx.conn, parsed, version)
    if content is None:
        raise NotFound("Agent version not found.")
    old_manifest, old_pipeline = content
    manifest = store.agent_manifest(
        str(old_manifest.get("name") or row["name"]),
        str(old_manifest.get("description") or ""),
        old_manifest.get("architecture"),
        old_manifest.get("realtime"),
        old_manifest.get("tools"),
    )
    stages = agent_config.compact_pipeline(old_pipeline)
    await store.write_version(ctx.conn, row, ctx.user_id, manifest, stages)
    return await _envelope(ctx, parsed)


@router.delete("/{agent_id}", response_model=Ok)
async def delete_agent(agent_id: str, ctx: UserDb) -> Ok:
    if not await store.remove_agent(ctx.conn, _agent_id(agent_id)):
        raise NotFound(_NOT_FOUND)
    return Ok()
