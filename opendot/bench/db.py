"""`opendot bench db`: the platform-state queries under RLS, at scale.

Creates a fresh database on the target server, migrates it, loads 100 users,
1,000 agents (3 versions each, with pipelines) and 10,000 devices (state, and
half of them bound to an agent), then runs the queries behind
GET /api/platform-state exactly as the API does: one transaction per request,
`set local role authenticated` and `request.jwt.claims` for a random user,
asyncpg without a statement cache (as behind Supabase's transaction pooler).
It reports p50/p99 per query and for the whole request, and the EXPLAIN
ANALYZE plan of each query with the relations it reads by sequential scan
(there should be none among the large tables). The database is dropped at
the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from shared.db.commands.target import add_url_argument, resolve_url
from shared.db.connection import connect, quote_ident, redact, with_database
from shared.db.errors import DatabaseError
from shared.db.migrate import migrate_async

USERS = 100
AGENTS_PER_USER = 10
VERSIONS_PER_AGENT = 3
DEVICES_PER_USER = 100
ITERATIONS = 300
WARMUP = 30
TARGET_P50_MS = 5.0
LARGE_TABLE_ROWS = 1000

QUERIES: dict[str, str] = {
    "agents_with_latest_versions": """
        select a.id, a.name, a.description, a.status, a.created_at, a.updated_at,
               av.version_number, av.manifest_json as agent_manifest,
               pv.version_number as pipeline_version_number, pv.manifest_json as pipeline_manifest
        from public.agents a
        join lateral (
          select v.version_number, v.manifest_json, v.pipeline_version_id
          from public.agent_versions v
          where v.agent_id = a.id
          order by v.version_number desc
          limit 1
        ) av on true
        left join public.pipeline_versions pv on pv.id = av.pipeline_version_id
        where a.user_id = $1 and a.deleted_at is null
        order by a.updated_at desc
    """,
    "devices_with_state_and_binding": """
        select d.id, d.display_name, d.model, d.serial_number, d.device_endpoint, d.updated_at,
               s.availability, s.ip_address, s.last_seen_at, s.update_mode,
               t.applied_at, dp.agent_id, dp.activated_at, a.name as agent_name
        from public.devices d
        left join public.device_state s on s.device_id = d.id
        left join public.deployment_device_targets t
          on t.device_id = d.id and t.status = 'active'
        left join public.deployments dp on dp.id = t.deployment_id
        left join public.agents a on a.id = dp.agent_id
        where d.user_id = $1 and d.deleted_at is null
        order by d.updated_at desc
    """,
    "settings": """
        select u.display_name, u.email, p.workspace_name, p.timezone, p.compact_mode
        from public.app_users u
        left join public.user_preferences p on p.user_id = u.id
        where u.id = $1
    """,
    "api_keys": """
        select k.id, k.name, k.prefix, k.created_at, k.last_used_at, k.status
        from public.api_keys k
        where k.user_id = $1
        order by k.created_at desc
    """,
}

_LOAD = """
create temporary table bench_users on commit drop as
  select i, gen_random_uuid() as id from generate_series(1, {users}) i;
insert into public.app_users (id, auth_provider, auth_subject, email, display_name)
  select id, 'local', 'bench-' || i || '@example.org', 'bench-' || i || '@example.org',
         'Bench ' || i
  from bench_users;
insert into public.user_preferences (user_id) select id from bench_users;
insert into public.api_keys (user_id, name, prefix, token_hash)
  select u.id, 'key ' || k, 'od_sk_' || lpad(k::text, 8, '0'),
         encode(sha256(convert_to(u.id::text || ':' || k, 'UTF8')), 'hex')
  from bench_users u, generate_series(1, 5) k;

create temporary table bench_agents on commit drop as
  select u.id as user_id, k, gen_random_uuid() as agent_id, gen_random_uuid() as pipeline_id
  from bench_users u, generate_series(1, {agents_per_user}) k;
insert into public.pipelines (id, user_id, slug, name)
  select pipeline_id, user_id, 'agent-' || k || '-pipeline', 'Agent ' || k || ' pipeline'
  from bench_agents;
insert into public.pipeline_versions (pipeline_id, version_number, manifest_json,
                                      created_by_user_id)
  select a.pipeline_id, v, $1::jsonb, a.user_id
  from bench_agents a, generate_series(1, {versions}) v;
insert into public.agents (id, user_id, pipeline_id, slug, name, updated_at)
  select agent_id, user_id, pipeline_id, 'agent-' || k, 'Agent ' || k,
         now() - k * interval '1 minute'
  from bench_agents;
insert into public.agent_versions (agent_id, pipeline_version_id, version_number,
                                   manifest_json, created_by_user_id)
  select a.agent_id, pv.id, pv.version_number,
         jsonb_build_object('name', 'Agent ' || a.k, 'description', '', 'status', 'draft',
                            'architecture', 'sandwich'),
         a.user_id
  from bench_agents a join public.pipeline_versions pv on pv.pipeline_id = a.pipeline_id;

create temporary table bench_devices on commit drop as
  select u.id as user_id, u.i, k, gen_random_uuid() as device_id, gen_random_uuid() as deployment_id
  from bench_users u, generate_series(1, {devices_per_user}) k;
insert into public.devices (id, user_id, serial_number, display_name, updated_at)
  select device_id, user_id, 'SN-' || i || '-' || k, 'Dot ' || k,
         now() - k * interval '1 second'
  from bench_devices;
insert into public.device_state (device_id, availability, last_seen_at, ip_address)
  select device_id, case when k % 3 = 0 then 'offline' else 'available' end, now(), '10.0.0.1'
  from bench_devices;
-- Every other device is bound to one of its owner's agents (latest version).
insert into public.deployments (id, user_id, agent_id, agent_version_id, pipeline_version_id,
                                name)
  select d.deployment_id, d.user_id, a.agent_id, av.id, av.pipeline_version_id, 'bench'
  from bench_devices d
  join bench_agents a on a.user_id = d.user_id and a.k = (d.k % {agents_per_user}) + 1
  join public.agent_versions av on av.agent_id = a.agent_id and av.version_number = {versions}
  where d.k % 2 = 0;
insert into public.deployment_device_targets (deployment_id, device_id, applied_at)
  select deployment_id, device_id, now() from bench_devices where k % 2 = 0;
"""


def configure(parser: argparse.ArgumentParser) -> None:
    add_url_argument(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--iterations", type=int, default=ITERATIONS, help="requests per query")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")


def run(args: argparse.Namespace) -> int:
    try:
        with resolve_url(args) as url:
            results = asyncio.run(measure(url, iterations=args.iterations, keep=args.keep))
    except DatabaseError as exc:
        print(f"opendot bench db: {exc}", file=sys.stderr)
        return 1
    print(format_report(results))
    path = getattr(args, "json", None)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _manifest() -> str:
    try:
        from shared.agent_config import compact_pipeline, default_stages

        return json.dumps({"stages": compact_pipeline(default_stages())})
    except ImportError:  # the config model is optional for this measurement
        return json.dumps({"stages": []})


async def _load(conn: asyncpg.Connection) -> dict[str, int]:
    sql = _LOAD.format(
        users=USERS,
        agents_per_user=AGENTS_PER_USER,
        versions=VERSIONS_PER_AGENT,
        devices_per_user=DEVICES_PER_USER,
    )
    manifest = _manifest()
    async with conn.transaction():
        # Statements one by one: $1 (the manifest) needs the extended protocol.
        for statement in filter(None, (s.strip() for s in sql.split(";"))):
            if "$1" in statement:
                await conn.execute(statement, manifest)
            else:
                await conn.execute(statement)
    await conn.execute("analyze")
    counts = {}
    for table in ("app_users", "agents", "agent_versions", "devices", "deployment_device_targets"):
        sql = f"select count(*) from public.{table}"  # noqa: S608 - constant table names
        counts[table] = int(await conn.fetchval(sql))
    return counts


async def _as_user(conn: asyncpg.Connection, user_id: str) -> None:
    claims = json.dumps({"sub": user_id, "role": "authenticated", "aud": "authenticated"})
    await conn.execute("set local role authenticated")
    await conn.execute("select set_config('request.jwt.claims', $1, true)", claims)


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _time_queries(
    conn: asyncpg.Connection, users: list[str], iterations: int
) -> dict[str, dict[str, float]]:
    rng = random.Random(7)  # noqa: S311 - picks users, not secrets
    samples: dict[str, list[float]] = {name: [] for name in QUERIES}
    samples["platform_state_request"] = []
    rows: dict[str, list[int]] = {name: [] for name in QUERIES}
    for i in range(WARMUP + iterations):
        user = rng.choice(users)
        request_start = time.perf_counter()
        async with conn.transaction():
            await _as_user(conn, user)
            for name, sql in QUERIES.items():
                start = time.perf_counter()
                result = await conn.fetch(sql, user)
                if i >= WARMUP:
                    samples[name].append((time.perf_counter() - start) * 1000)
                    rows[name].append(len(result))
        if i >= WARMUP:
            samples["platform_state_request"].append((time.perf_counter() - request_start) * 1000)
    report: dict[str, dict[str, float]] = {}
    for name, values in samples.items():
        report[name] = {
            "p50_ms": round(statistics.median(values), 3),
            "p99_ms": round(_percentile(values, 0.99), 3),
        }
        if name in rows:
            report[name]["rows_per_user"] = round(statistics.mean(rows[name]), 1)
    return report


async def _server_times(
    conn: asyncpg.Connection, users: list[str], reps: int
) -> dict[str, dict[str, float]]:
    """Planning and execution time inside the server (EXPLAIN ANALYZE), per query.

    Separates what the database spends from client, protocol and scheduling
    overhead, which dominate on a loaded machine.
    """
    rng = random.Random(11)  # noqa: S311 - picks users, not secrets
    planning: dict[str, list[float]] = {name: [] for name in QUERIES}
    execution: dict[str, list[float]] = {name: [] for name in QUERIES}
    for _ in range(reps):
        user = rng.choice(users)
        async with conn.transaction():
            await _as_user(conn, user)
            for name, sql in QUERIES.items():
                raw = await conn.fetchval(f"explain (analyze, timing off, format json) {sql}", user)
                plan = json.loads(raw)[0] if isinstance(raw, str) else raw[0]
                planning[name].append(float(plan["Planning Time"]))
                execution[name].append(float(plan["Execution Time"]))
    return {
        name: {
            "planning_p50_ms": round(statistics.median(planning[name]), 3),
            "execution_p50_ms": round(statistics.median(execution[name]), 3),
        }
        for name in QUERIES
    }


async def _plans(conn: asyncpg.Connection, user: str) -> dict[str, dict[str, Any]]:
    sizes = {
        r["relname"]: int(r["reltuples"])
        for r in await conn.fetch(
            "select c.relname, c.reltuples from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'public' and c.relkind = 'r'"
        )
    }
    plans: dict[str, dict[str, Any]] = {}
    for name, sql in QUERIES.items():
        async with conn.transaction():
            await _as_user(conn, user)
            lines = [
                r[0]
                for r in await conn.fetch(
                    f"explain (analyze, costs off, timing off, summary off) {sql}", user
                )
            ]
        seq_scanned = sorted(
            {
                line.split("Seq Scan on ", 1)[1].split()[0]
                for line in lines
                if "Seq Scan on " in line
            }
        )
        large = [t for t in seq_scanned if sizes.get(t, 0) >= LARGE_TABLE_ROWS]
        plans[name] = {
            "uses_index": any("Index" in line for line in lines),
            "seq_scans": seq_scanned,
            "seq_scans_on_large_tables": large,
            "plan": lines,
        }
    return plans


async def measure(url: str, *, iterations: int = ITERATIONS, keep: bool = False) -> dict[str, Any]:
    name = f"opendot_bench_{uuid.uuid4().hex[:8]}"
    admin = await connect(with_database(url, "postgres"))
    try:
        await admin.execute(f"create database {quote_ident(name)}")
    finally:
        await admin.close()
    bench_url = with_database(url, name)
    try:
        await migrate_async(bench_url)
        conn = await connect(bench_url)
        try:
            load_start = time.perf_counter()
            counts = await _load(conn)
            load_s = time.perf_counter() - load_start
            users = [str(r["id"]) for r in await conn.fetch("select id from public.app_users")]
            timings = await _time_queries(conn, users, iterations)
            # The same requests over a connection that keeps prepared
            # statements (direct connection or session pooler): no re-parsing
            # and re-planning per request.
            cached_conn = await asyncpg.connect(bench_url, statement_cache_size=100)
            try:
                cached = await _time_queries(cached_conn, users, iterations)
            finally:
                await cached_conn.close()
            server = await _server_times(conn, users, max(10, iterations // 5))
            plans = await _plans(conn, users[0])
            server_version = await conn.fetchval("show server_version")
        finally:
            await conn.close()
    finally:
        if not keep:
            admin = await connect(with_database(url, "postgres"))
            try:
                await admin.execute(f"drop database if exists {quote_ident(name)} with (force)")
            finally:
                await admin.close()
    p50 = timings["platform_state_request"]["p50_ms"]
    return {
        "database": redact(bench_url) + ("" if keep else " (dropped)"),
        "server_version": server_version,
        "rows": counts,
        "load_seconds": round(load_s, 2),
        "iterations": iterations,
        "timings": timings,
        "target_p50_ms": TARGET_P50_MS,
        "target_met": {
            "transaction_pooler": all(
                t["p50_ms"] < TARGET_P50_MS for k, t in timings.items() if k in QUERIES
            ),
            "statement_cache": all(
                t["p50_ms"] < TARGET_P50_MS for k, t in cached.items() if k in QUERIES
            ),
        },
        "timings_statement_cache": cached,
        "whole_request_p50_ms": p50,
        "server_side": server,
        "plans": plans,
    }


def format_report(results: dict[str, Any]) -> str:
    rows = results["rows"]
    out = [
        f"opendot bench db — PostgreSQL {results['server_version']}, "
        f"{rows['app_users']} users, {rows['agents']} agents ({rows['agent_versions']} versions), "
        f"{rows['devices']} devices ({rows['deployment_device_targets']} bound); "
        f"loaded in {results['load_seconds']} s",
        f"{results['iterations']} requests as `authenticated` with request.jwt.claims, "
        "one transaction each, no statement cache (as behind a transaction pooler)",
        "",
        f"{'query':34} {'p50 ms':>8} {'p99 ms':>8} {'rows':>6}  index  seq scans (large)",
    ]
    for name, timing in results["timings"].items():
        plan = results["plans"].get(name)
        rows_text = f"{timing.get('rows_per_user', ''):>6}"
        plan_text = ""
        if plan:
            large = ", ".join(plan["seq_scans_on_large_tables"]) or "none"
            plan_text = f"  {'yes' if plan['uses_index'] else 'NO ':5}  {large}"
        out.append(
            f"{name:34} {timing['p50_ms']:8.3f} {timing['p99_ms']:8.3f} {rows_text}{plan_text}"
        )
    out += [
        "",
        "same requests with a statement cache (direct connection or session pooler):",
    ]
    for name, timing in results["timings_statement_cache"].items():
        out.append(f"{name:34} {timing['p50_ms']:8.3f} {timing['p99_ms']:8.3f}")
    out += ["", "inside the server (EXPLAIN ANALYZE medians): planning + execution ms"]
    for name, times in results["server_side"].items():
        out.append(
            f"  {name:32} {times['planning_p50_ms']:7.3f} + {times['execution_p50_ms']:7.3f}"
        )
    out.append("")
    for mode, met in results["target_met"].items():
        verdict = "met" if met else "NOT met"
        out.append(f"target ({mode}): every query p50 < {results['target_p50_ms']} ms — {verdict}")
    for name, plan in results["plans"].items():
        out += ["", f"plan: {name}", *(f"  {line}" for line in plan["plan"])]
    return "\n".join(out)
