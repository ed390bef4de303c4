"""Reading and writing agents with their append-only versions.

An agent's content lives in two immutable snapshots: the agent version
(`{name, description, status, architecture, realtime, tools}`) and the pipeline version
(`{stages: compact}`); the current agent is the highest agent version. Queries
run as the request's role, so RLS limits them to the caller's rows (internal
callers run as service_role and pass ids they already verified).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared import agent_config
from shared.tools_config import normalize_tools

_SELECT = """
select a.id, a.user_id, a.name, a.description, a.status, a.created_at, a.updated_at,
       a.pipeline_id, av.id as agent_version_id, av.version_number,
       av.manifest_json as agent_manifest, pv.id as pipeline_version_id,
       pv.version_number as pipeline_version_number, pv.manifest_json as pipeline_manifest
from public.agents a
left join lateral (
  select v.* from public.agent_versions v
  where v.agent_id = a.id order by v.version_number desc limit 1
) av on true
left join public.pipeline_versions pv on pv.id = av.pipeline_version_id
where a.deleted_at is null
"""


def iso(value: datetime | None) -> str | None:
    """JavaScript's toISOString() form, which the console parses."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_uuid(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return (slug or "agent")[:56].strip("-") or "agent"


def agent_json(
    row: asyncpg.Record | dict[str, Any],
    agent_manifest: dict[str, Any] | None = None,
    pipeline_manifest: dict[str, Any] | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    manifest = agent_manifest if agent_manifest is not None else (row["agent_manifest"] or {})
    pipeline = pipeline_manifest if pipeline_manifest is not None else row["pipeline_manifest"]
    return agent_config.normalize_agent(
        {
            "id": str(row["id"]),
            "name": row["name"],
            "description": row["description"],
            "architecture": manifest.get("architecture"),
            "realtime": manifest.get("realtime"),
            "tools": manifest.get("tools"),
            "status": row["status"],
            "version": version if version is not None else int(row["version_number"] or 0),
            "createdAt": iso(row["created_at"]),
            "updatedAt": iso(row["updated_at"]),
            "pipeline": (pipeline or {}).get("stages"),
        }
    )


async def list_agents(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(_SELECT + " order by a.updated_at desc")
    return [agent_json(r) for r in rows]


async def fetch_row(
    conn: asyncpg.Connection, agent_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    if lock:
        await conn.execute(
            "select 1 from public.agents where id = $1 and deleted_at is null for update", agent_id
        )
    row: asyncpg.Record | None = await conn.fetchrow(_SELECT + " and a.id = $1", agent_id)
    return row


async def get_agent(conn: asyncpg.Connection, agent_id: uuid.UUID) -> dict[str, Any] | None:
    row = await fetch_row(conn, agent_id)
    return agent_json(row) if row else None


def agent_manifest(
    name: str, description: str, architecture: Any, realtime: Any, tools: Any = None
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "status": "draft",
        "architecture": agent_config.normalize_architecture(architecture),
        "realtime": agent_config.normalize_realtime(realtime),
        "tools": normalize_tools(tools),
    }


async def create_agent(
    conn: asyncpg.Connection,
    user_id: str,
    name: str,
    description: str,
    architecture: str | None = None,
) -> uuid.UUID:
    agent_id = uuid.uuid4()
    slug = f"{slugify(name)}-{str(agent_id)[:8]}"
    stages = agent_config.compact_pipeline(agent_config.default_stages())
    pipeline_id = await conn.fetchval(
        "insert into public.pipelines (user_id, slug, name, description)"
        " values ($1, $2, $3, $4) returning id",
        uuid.UUID(user_id),
        f"{slug}-pipeline"[:128],
        f"{name} pipeline"[:200],
        description,
    )
    pipeline_version_id = await conn.fetchval(
        "insert into public.pipeline_versions"
        " (pipeline_id, version_number, manifest_json, latency_budget_ms, created_by_user_id)"
        " values ($1, 1, $2, $3, $4) returning id",
        pipeline_id,
        {"stages": stages},
        agent_config.latency_budget_ms(),
        uuid.UUID(user_id),
    )
    await conn.execute(
        "insert into public.agents (id, user_id, pipeline_id, slug, name, description)"
        " values ($1, $2, $3, $4, $5, $6)",
        agent_id,
        uuid.UUID(user_id),
        pipeline_id,
        slug,
        name,
        description,
    )
    await conn.execute(
        "insert into public.agent_versions"
        " (agent_id, pipeline_version_id, version_number, manifest_json, created_by_user_id)"
        " values ($1, $2, 1, $3, $4)",
        agent_id,
        pipeline_version_id,
        agent_manifest(name, description, architecture or "sandwich", None),
        uuid.UUID(user_id),
    )
    return agent_id


async def write_version(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    user_id: str,
    manifest: dict[str, Any],
    stages: list[dict[str, Any]],
) -> bool:
    """Append new versions when content changed; False when nothing did."""
    current_stages = agent_config.compact_pipeline(row["pipeline_manifest"] or {})
    current_manifest = agent_manifest(
        row["name"],
        row["description"],
        (row["agent_manifest"] or {}).get("architecture"),
        (row["agent_manifest"] or {}).get("realtime"),
        (row["agent_manifest"] or {}).get("tools"),
    )
    pipeline_changed = stages != current_stages or row["pipeline_version_id"] is None
    if not pipeline_changed and manifest == current_manifest:
        return False
    uid = uuid.UUID(user_id)
    pipeline_version_id = row["pipeline_version_id"]
    if pipeline_changed:
        pipeline_version_id = await conn.fetchval(
            "insert into public.pipeline_versions"
            " (pipeline_id, version_number, manifest_json, latency_budget_ms, created_by_user_id)"
            " select $1, coalesce(max(version_number), 0) + 1, $2, $3, $4"
            " from public.pipeline_versions where pipeline_id = $1 returning id",
            row["pipeline_id"],
            {"stages": stages},
            agent_config.latency_budget_ms(agent_config.normalize_pipeline(stages)),
            uid,
        )
    await conn.execute(
        "insert into public.agent_versions"
        " (agent_id, pipeline_version_id, version_number, manifest_json, created_by_user_id)"
        " values ($1, $2, $3, $4, $5)",
        row["id"],
        pipeline_version_id,
        int(row["version_number"] or 0) + 1,
        manifest,
        uid,
    )
    await conn.execute(
        "update public.agents set name = $2, description = $3, updated_at = now() where id = $1",
        row["id"],
        manifest["name"],
        manifest["description"],
    )
    if manifest["name"] != row["name"]:
        await conn.execute(
            "update public.pipelines set name = $2, updated_at = now() where id = $1",
            row["pipeline_id"],
            f"{manifest['name']} pipeline"[:200],
        )
    return True


async def list_versions(conn: asyncpg.Connection, agent_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "select v.version_number, v.manifest_json, v.created_at, pv.version_number as pv"
        " from public.agent_versions v"
        " left join public.pipeline_versions pv on pv.id = v.pipeline_version_id"
        " where v.agent_id = $1 order by v.version_number desc",
        agent_id,
    )
    latest = rows[0]["version_number"] if rows else None
    return [
        {
            "version": r["version_number"],
            "pipelineVersion": r["pv"],
            "name": (r["manifest_json"] or {}).get("name", ""),
            "createdAt": iso(r["created_at"]),
            "current": r["version_number"] == latest,
        }
        for r in rows
    ]


async def version_content(
    conn: asyncpg.Connection, agent_id: uuid.UUID, version: int
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    row = await conn.fetchrow(
        "select v.manifest_json as am, pv.manifest_json as pm from public.agent_versions v"
        " left join public.pipeline_versions pv on pv.id = v.pipeline_version_id"
        " where v.agent_id = $1 and v.version_number = $2",
        agent_id,
        version,
    )
    if row is None:
        return None
    return row["am"] or {}, row["pm"] or {}


async def agent_for_device(conn: asyncpg.Connection, device_id: uuid.UUID) -> dict[str, Any] | None:
    """The agent a device runs: the pinned version, or the latest when following."""
    target = await conn.fetchrow(
        "select dp.agent_id, dp.follow_latest, dp.agent_version_id"
        " from public.deployment_device_targets t"
        " join public.deployments dp on dp.id = t.deployment_id"
        " where t.device_id = $1 and t.status = 'active' and dp.status = 'active'",
        device_id,
    )
    if target is None:
        return None
    row = await fetch_row(conn, target["agent_id"])
    if row is None:
        return None
    if target["follow_latest"] or target["agent_version_id"] == row["agent_version_id"]:
        return agent_json(row)
    pinned = await conn.fetchrow(
        "select v.version_number, v.manifest_json as am, pv.manifest_json as pm"
        " from public.agent_versions v"
        " left join public.pipeline_versions pv on pv.id = v.pipeline_version_id"
        " where v.id = $1",
        target["agent_version_id"],
    )
    if pinned is None:
        return agent_json(row)
    manifest = pinned["am"] or {}
    merged = dict(row)
    merged["name"] = manifest.get("name", row["name"])
    merged["description"] = manifest.get("description", row["description"])
    return agent_json(merged, manifest, pinned["pm"] or {}, int(pinned["version_number"]))


async def remove_agent(conn: asyncpg.Connection, agent_id: uuid.UUID) -> bool:
    """Soft delete: the agent and its pipeline, its unused voice tokens, its deployments.

    False when there is no such agent of the caller's.
    """
    pipeline_id = await conn.fetchval(
        "update public.agents set status = 'removed', deleted_at = now(), updated_at = now()"
        " where id = $1 and deleted_at is null returning coalesce(pipeline_id, id)",
        agent_id,
    )
    if pipeline_id is None:
        return False
    await conn.execute(
        "update public.pipelines set deleted_at = now(), updated_at = now()"
        " where id = $1 and deleted_at is null",
        pipeline_id,
    )
    await conn.execute("select private.revoke_agent_runtime_tokens($1)", agent_id)
    deployments = await conn.fetch(
        "update public.deployments set status = 'removed', superseded_at = coalesce(superseded_at,"
        " now()), updated_at = now() where agent_id = $1 and status <> 'removed' returning id",
        agent_id,
    )
    if deployments:
        await conn.execute(
            "update public.deployment_device_targets set status = 'removed', updated_at = now()"
            " where deployment_id = any($1::uuid[]) and status <> 'removed'",
            [r["id"] for r in deployments],
        )
    return True
