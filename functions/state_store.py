"""`GET /api/platform-state` in one statement, under the request's RLS.

The console loads agents, devices, settings and API keys together on every
page. Fetching them as four queries (plus their JSON decoding and a pydantic
round trip of every nested pipeline setting) was most of the request. Here
PostgreSQL builds the whole document with `json_build_object`/`json_agg` in
a single statement that runs as the `authenticated` role with the verified
claims already set by `functions.deps` (RLS is applied when a statement is
planned, so the role switch must precede it; it does, in the same
transaction). Timestamps are formatted by PostgreSQL the way JavaScript's
`toISOString()` does (`agents_store.iso`), whatever the session time zone.

The agents' version-dependent content (architecture, realtime, pipeline) does
not travel with every request: the statement returns each agent's current
version id, the content comes from `AgentContentCache`, and only versions the
cache has not seen are fetched, in one more statement.

The JSON has exactly the shape and bytes `PlatformState` produces (same field
order, same serialiser: pydantic-core), which a test checks against the
per-resource endpoints.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from pydantic_core import to_json

from functions.agent_cache import AgentContentCache, content_of

# A timestamptz as JavaScript's toISOString() (`agents_store.iso`): UTC,
# milliseconds truncated, `Z`. Passed as $2 to every to_char().
JS_ISO_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'

STATE_SQL = """
select json_build_object(
  'agents', (
    select coalesce(json_agg(json_build_object(
      'id', a.id, 'name', a.name, 'description', a.description, 'status', a.status,
      'version', coalesce(av.version_number, 0),
      'createdAt', to_char(a.created_at at time zone 'UTC', $2),
      'updatedAt', to_char(a.updated_at at time zone 'UTC', $2),
      'versionId', av.id
    ) order by a.updated_at desc), '[]'::json)
    from public.agents a
    left join lateral (
      select v.id, v.version_number from public.agent_versions v
      where v.agent_id = a.id order by v.version_number desc limit 1
    ) av on true
    where a.deleted_at is null
  ),
  'devices', (
    select coalesce(json_agg(json_build_object(
      'id', d.id, 'name', d.display_name, 'model', d.model,
      'serialNumber', d.serial_number,
      'availability', coalesce(s.availability, 'unknown'),
      'ipAddress', coalesce(s.ip_address, ''),
      'deviceEndpoint', d.device_endpoint,
      'lastSeenAt', to_char(s.last_seen_at at time zone 'UTC', $2),
      'boundAgentId', case when a.name is not null then dp.agent_id end,
      'boundAgentName', a.name,
      'boundAgentVersion', case when a.name is null then null
        when coalesce(dp.follow_latest, false) then
          (select max(v.version_number) from public.agent_versions v where v.agent_id = a.id)
        else pinned.version_number end,
      'boundConfigVersion',
        case when a.name is not null then to_char(dp.activated_at at time zone 'UTC', $2) end,
      'boundAt', case when a.name is not null then to_char(t.applied_at at time zone 'UTC', $2) end,
      'followLatest', a.name is not null and coalesce(dp.follow_latest, false),
      'updateMode', coalesce(s.update_mode, 'idle'),
      'firmwareVersion', s.firmware_version, 'board', s.board, 'firmwarePin', d.firmware_pin,
      'updatedAt', to_char(greatest(d.updated_at, s.updated_at) at time zone 'UTC', $2)
    ) order by d.updated_at desc), '[]'::json)
    from public.devices d
    left join public.device_state s on s.device_id = d.id
    left join public.deployment_device_targets t on t.device_id = d.id and t.status = 'active'
    left join public.deployments dp on dp.id = t.deployment_id and dp.status = 'active'
    left join public.agents a on a.id = dp.agent_id and a.deleted_at is null
    left join public.agent_versions pinned on pinned.id = dp.agent_version_id
    where d.deleted_at is null
  ),
  'userSettings', coalesce(
    (
      select json_build_object(
        'displayName', u.display_name, 'email', u.email,
        'workspaceName', coalesce(p.workspace_name, 'OpenDot Lab'),
        'timezone', coalesce(p.timezone, 'UTC'),
        'compactMode', coalesce(p.compact_mode, false)
      )
      from public.app_users u left join public.user_preferences p on p.user_id = u.id
      where u.id = $1
    ),
    json_build_object(
      'displayName', '', 'email', '', 'workspaceName', 'OpenDot Lab', 'timezone', 'UTC',
      'compactMode', false
    )
  ),
  'apiKeys', (
    select coalesce(json_agg(json_build_object(
      'id', k.id, 'name', k.name, 'token', null::text, 'prefix', k.prefix,
      'createdAt', to_char(k.created_at at time zone 'UTC', $2),
      'lastUsedAt', to_char(k.last_used_at at time zone 'UTC', $2),
      'expiresAt', to_char(k.expires_at at time zone 'UTC', $2),
      'status', case when k.status = 'active' and k.expires_at <= clock_timestamp()
                     then 'expired' else k.status end
    ) order by k.created_at desc), '[]'::json)
    from public.api_keys k
  )
)::text
"""

CONTENT_SQL = """
select v.id::text as id, v.manifest_json::text as agent_manifest,
       pv.manifest_json::text as pipeline_manifest
from public.agent_versions v
left join public.pipeline_versions pv on pv.id = v.pipeline_version_id
where v.id = any($1::uuid[])
"""

_NO_VERSION = ""  # agents without any version read as the current defaults


async def platform_state(conn: asyncpg.Connection, user_id: str, cache: AgentContentCache) -> bytes:
    """The platform-state response body (JSON bytes) for the request's user."""
    raw: str = await conn.fetchval(STATE_SQL, user_id, JS_ISO_FORMAT)
    state: dict[str, Any] = json.loads(raw)
    agents: list[dict[str, Any]] = state["agents"]
    wanted = {a["versionId"] or _NO_VERSION for a in agents}
    contents = {key: cache.get(key) for key in wanted}
    missing = [key for key, found in contents.items() if found is None]
    if missing:
        if _NO_VERSION in missing:
            contents[_NO_VERSION] = content_of(None, None)
        fetched = [key for key in missing if key != _NO_VERSION]
        if fetched:
            rows = await conn.fetch(CONTENT_SQL, fetched)
            for row in rows:
                contents[row["id"]] = content_of(
                    json.loads(row["agent_manifest"] or "null"),
                    json.loads(row["pipeline_manifest"] or "null"),
                )
        for key in missing:
            found = contents.get(key)
            if found is not None:
                cache.put(key, found)
    # Spliced rather than serialised whole: an agent's content is most of the
    # body (~9 KiB each) and is already JSON in the cache. Compact JSON has no
    # whitespace, so the pieces join into exactly what one to_json would give.
    parts = [b'{"agents":[']
    for index, agent in enumerate(agents):
        content = contents.get(agent["versionId"] or _NO_VERSION)
        if content is None:  # the version vanished between the two statements
            content = content_of(None, None)
        head = {"id": agent["id"], "name": agent["name"], "description": agent["description"]}
        tail = {
            "status": agent["status"],
            "version": agent["version"],
            "createdAt": agent["createdAt"],
            "updatedAt": agent["updatedAt"],
        }
        parts += (
            b"," if index else b"",
            to_json(head)[:-1],
            b",",
            content.architecture_realtime_json,
            b",",
            to_json(tail)[1:-1],
            b',"pipeline":',
            content.pipeline_json,
            b"}",
        )
    parts += (
        b'],"devices":',
        to_json(state["devices"]),
        b',"userSettings":',
        to_json(state["userSettings"]),
        b',"apiKeys":',
        to_json(state["apiKeys"]),
        b"}",
    )
    return b"".join(parts)
