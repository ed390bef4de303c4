"""supabase/seed.sql: the demo identity the README and `opendot up` promise."""

from __future__ import annotations

import asyncio

import asyncpg
from argon2 import PasswordHasher

from runtime.composition import plan_pipeline
from runtime.providers.settings import ProviderSettings
from shared import agent_config
from shared.db.seed import apply_seed

DEMO_USER = "00000000-0000-4000-8000-000000000001"
DEMO_AGENT = "00000000-0000-4000-8000-0000000000a1"


async def _demo(url: str) -> asyncpg.Record:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchrow(
            """
            select u.email, u.display_name, c.password_hash, a.name as agent,
                   (select count(*) from public.agent_versions v
                     where v.agent_id = a.id) as versions,
                   (select count(*) from public.pipeline_versions pv
                     where pv.pipeline_id = a.pipeline_id) as pipeline_versions,
                   (select count(*) from public.app_users) as users
            from public.app_users u
            join public.local_auth_credentials c on c.user_id = u.id
            join public.agents a on a.user_id = u.id
            where u.id = $1 and a.id = $2
            """,
            DEMO_USER,
            DEMO_AGENT,
        )
    finally:
        await conn.close()


def test_seed_is_idempotent_and_the_demo_password_verifies(database_url: str) -> None:
    apply_seed(database_url)
    first = asyncio.run(_demo(database_url))
    apply_seed(database_url)
    second = asyncio.run(_demo(database_url))
    assert first is not None and dict(first) == dict(second)
    assert (first["email"], first["display_name"], first["agent"]) == (
        "demo@opendot.local",
        "Demo",
        "Demo agent",
    )
    assert (first["versions"], first["pipeline_versions"]) == (1, 1)
    assert PasswordHasher().verify(first["password_hash"], "opendot-demo")


async def _demo_stages(url: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(
            "select pv.manifest_json::text from public.agent_versions v"
            " join public.pipeline_versions pv on pv.id = v.pipeline_version_id"
            " where v.agent_id = $1",
            DEMO_AGENT,
        )
    finally:
        await conn.close()


def test_the_demo_agent_names_what_the_runtime_runs_without_keys(database_url: str) -> None:
    import json

    apply_seed(database_url)
    stored = json.loads(str(asyncio.run(_demo_stages(database_url))))
    stages = agent_config.normalize_pipeline(stored)
    shown = {s["id"]: (s["provider"], s["model"]) for s in stages}
    assert shown == {
        "vad": ("silero", "endpointing-vad"),
        "stt": ("local", "whisper-tiny.en"),
        "llm": ("echo", "echo"),
        "tts": ("local", "piper-en_US-joe-medium"),
    }
    agent = {"id": DEMO_AGENT, "name": "Demo agent", "pipeline": stages}
    keyless = ProviderSettings(_env_file=None)  # type: ignore[call-arg]
    plan = plan_pipeline(agent, keyless)
    assert plan.notes == [], "no configured provider is skipped: the stages are the truth"
    assert plan.stages["llm"] == ["echo"]
    assert plan.stages["stt"][0].startswith("local")
    assert plan.stages["tts"][0] == "local-piper"
