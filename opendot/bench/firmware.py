"""`opendot bench firmware`: the OTA answer with firmware rollouts, at the API.

Creates a fresh database, migrates it and loads 50 owners with 200 claimed
Dots each (10,000; half on board-a, half on board-b, all on 1.0.0), 20
releases (five owners, two boards, 1.0.0 and 1.1.0) and 5 active 100 %
rollouts (1.1.0 on those owners' board-a). Then it sends the runtime's
bootstrap request (POST /api/internal/device-activations/bootstrap) to the
real API app in-process, one at a time, and times the answer for:

- `today`: the same app without firmware storage, i.e. the OTA answer before
  firmware updates existed (no firmware query at all);
- `no_rollout`: a Dot whose board has no live rollout (the common case);
- `offered`: a Dot in a rollout's cohort on an older version (decision,
  progress row, signed URL);
- `updated`: a Dot reporting the rollout's version (its step completes).

It reports p50/p99 per case, each case's p50 minus today's (the goal: within
1 ms), and the plan of the decision query (an index probe, no sequential scan).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from shared.db.commands.target import add_url_argument, resolve_url
from shared.db.connection import connect, quote_ident, redact, with_database
from shared.db.errors import DatabaseError
from shared.db.migrate import migrate_async

OWNERS = 50
DOTS_PER_OWNER = 200
ROLLOUT_OWNERS = 5
REQUESTS = 1000
WARMUP = 50
GOAL_DELTA_MS = 1.0
SECRET = "bench-internal-secret-0123456789"  # noqa: S105 - a throwaway database's secret

_LOAD = """
insert into public.app_users (id, auth_provider, auth_subject, email, display_name)
select ('00000000-0000-4000-8000-' || lpad(o::text, 12, '0'))::uuid, 'local',
       'owner' || o, 'owner' || o || '@bench.test', 'Owner ' || o
from generate_series(1, {owners}) o;
insert into public.devices (id, user_id, serial_number, hardware_id, display_name)
select ('00000000-0000-4000-9000-' || lpad(i::text, 12, '0'))::uuid,
       ('00000000-0000-4000-8000-' || lpad((1 + (i - 1) / {per})::text, 12, '0'))::uuid,
       'SN' || i, 'mac-' || i, 'Dot ' || i
from generate_series(1, {owners} * {per}) i;
insert into public.device_credentials (device_id, prefix, token_hash)
select ('00000000-0000-4000-9000-' || lpad(i::text, 12, '0'))::uuid, 'od_dt_bench',
       encode(sha256(convert_to('od_dt_bench' || i, 'UTF8')), 'hex')
from generate_series(1, {owners} * {per}) i;
insert into public.device_state (device_id, firmware_version, board)
select ('00000000-0000-4000-9000-' || lpad(i::text, 12, '0'))::uuid, '1.0.0',
       case when i % 2 = 0 then 'board-a' else 'board-b' end
from generate_series(1, {owners} * {per}) i;
insert into public.firmware_releases (user_id, board, version, version_key, size, sha256)
select ('00000000-0000-4000-8000-' || lpad(o::text, 12, '0'))::uuid, b, v,
       string_to_array(v, '.')::integer[], 4194304,
       encode(sha256(convert_to(o || b || v, 'UTF8')), 'hex')
from generate_series(1, {rollout_owners}) o, unnest(array['board-a', 'board-b']) b,
     unnest(array['1.0.0', '1.1.0']) v;
insert into public.firmware_rollouts (user_id, release_id, board, percent)
select r.user_id, r.id, r.board, 100 from public.firmware_releases r
where r.board = 'board-a' and r.version = '1.1.0'
"""

DECISION = """
select r.id, rel.id, rel.version
from public.firmware_rollouts r
join public.firmware_releases rel on rel.id = r.release_id
left join public.firmware_rollout_devices s on s.rollout_id = r.id and s.device_id = $1
where r.user_id = $2 and r.board = 'board-a' and r.status = 'active'
  and rel.version_key <> '{1,0,0}' and rel.version_key > '{1,0,0}'
  and r.device_ids is null
"""


def configure(parser: argparse.ArgumentParser) -> None:
    add_url_argument(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="OTA requests per case")
    parser.add_argument("--quick", action="store_true", help="200 requests per case")


def run(args: argparse.Namespace) -> int:
    requests = 200 if args.quick else args.requests
    try:
        with resolve_url(args) as url:
            results = asyncio.run(measure(url, requests=requests))
    except DatabaseError as exc:
        print(f"opendot bench firmware: {exc}", file=sys.stderr)
        return 1
    print(format_report(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _dot(i: int) -> tuple[str, str]:
    """(MAC, bearer token) of bench Dot number i (1-based)."""
    return f"mac-{i}", f"od_dt_bench{i}"


def _body(i: int, version: str) -> dict[str, Any]:
    mac, token = _dot(i)
    board = "board-a" if i % 2 == 0 else "board-b"
    return {
        "deviceId": mac,
        "clientId": str(uuid.UUID(int=i)),
        "userAgent": f"{board}/{version}",
        "ipAddress": "192.0.2.10",
        "authorization": f"Bearer {token}",
        "websocketUrl": "ws://runtime.bench:8787/ws",
        "systemInfo": {
            "version": 2,
            "application": {"name": "xiaozhi", "version": version},
            "board": {"type": board, "name": board},
        },
    }


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _app(url: str, *, firmware: bool) -> Any:
    from functions.app import create_app
    from functions.settings import ApiSettings

    settings = ApiSettings(  # type: ignore[call-arg]
        _env_file=None,
        OPENDOT_ENV="test",
        POSTGRES_URI=url,
        OPENDOT_RUNTIME_INTERNAL_SECRET=SecretStr(SECRET),
        OPENDOT_FIRMWARE_MAX_OFFERS=100,  # bench Dots are offered again and again
        OPENDOT_DB_POOL_MAX=2,
    )
    app = create_app(settings)
    if not firmware:
        from dataclasses import replace

        app.state.services = replace(app.state.services, firmware=None)
    return app


async def _measure_app(url: str, requests: int) -> dict[str, Any]:
    """Every case once per round, in a shuffled order, so a busy machine slows all alike."""
    everyone = list(range(1, OWNERS * DOTS_PER_OWNER + 1))
    in_rollout = [i for i in range(1, ROLLOUT_OWNERS * DOTS_PER_OWNER + 1) if i % 2 == 0]
    chosen = set(in_rollout)
    no_rollout = [i for i in everyone if i not in chosen]
    apps = {"today": _app(url, firmware=False), "firmware": _app(url, firmware=True)}
    headers = {"X-OpenDot-Runtime-Secret": SECRET}
    clients = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.bench", headers=headers
        )
        for name, app in apps.items()
    }
    cases = {
        "today": ("today", everyone, "1.0.0", False),
        "no_rollout": ("firmware", no_rollout, "1.0.0", False),
        "offered": ("firmware", in_rollout, "1.0.0", True),
        "updated": ("firmware", in_rollout, "1.1.0", False),
    }
    rng = random.Random(5)  # noqa: S311 - picks Dots and orders, not secrets
    samples: dict[str, list[float]] = {label: [] for label in cases}
    order = list(cases)
    try:
        for k in range(WARMUP + requests):
            rng.shuffle(order)
            for label in order:
                app_name, dots, version, expect_offer = cases[label]
                body = _body(rng.choice(dots), version)
                start = time.perf_counter()
                response = await clients[app_name].post(
                    "/api/internal/device-activations/bootstrap", json=body
                )
                elapsed = (time.perf_counter() - start) * 1000
                if response.status_code != 200 or ("firmware" in response.json()) != expect_offer:
                    raise DatabaseError(
                        f"unexpected OTA answer ({label}): {response.status_code} {response.text}"
                    )
                if k >= WARMUP:
                    samples[label].append(elapsed)
    finally:
        for client in clients.values():
            await client.aclose()
        for app in apps.values():
            await app.state.services.db.close()
    result: dict[str, dict[str, float]] = {}
    for label, values in samples.items():
        result[label] = {
            "p50_ms": round(statistics.median(values), 3),
            "p99_ms": round(_pct(values, 0.99), 3),
        }
    for label in ("no_rollout", "offered", "updated"):
        result[label]["delta_p50_ms"] = round(
            result[label]["p50_ms"] - result["today"]["p50_ms"], 3
        )
    return result


async def _sql_offer(conn: Any, requests: int) -> dict[str, Any]:
    """The firmware decision alone, as service_role: `private.firmware_offer` per call,
    timed by the client and, less exposed to a busy machine, inside the server."""
    rng = random.Random(9)  # noqa: S311
    client, server = [], []
    sql = "select * from private.firmware_offer($1, '1.0.0', '{1,0,0}', 'board-a', 100)"
    for k in range(WARMUP + requests):
        i = rng.choice(range(2, ROLLOUT_OWNERS * DOTS_PER_OWNER + 1, 2))
        device = uuid.UUID(f"00000000-0000-4000-9000-{i:012d}")
        start = time.perf_counter()
        await conn.fetch(sql, device)
        elapsed = (time.perf_counter() - start) * 1000
        raw = await conn.fetchval("explain (analyze, timing off, format json) " + sql, device)
        doc = json.loads(raw) if isinstance(raw, str) else raw
        if k >= WARMUP:
            client.append(elapsed)
            server.append(float(doc[0]["Execution Time"]))
    return {
        "p50_ms": round(statistics.median(client), 3),
        "p99_ms": round(_pct(client, 0.99), 3),
        "server_p50_ms": round(statistics.median(server), 3),
        "server_p99_ms": round(_pct(server, 0.99), 3),
    }


async def measure(url: str, *, requests: int = REQUESTS) -> dict[str, Any]:
    name = f"opendot_bench_fw_{uuid.uuid4().hex[:8]}"
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
            sql = _LOAD.format(owners=OWNERS, per=DOTS_PER_OWNER, rollout_owners=ROLLOUT_OWNERS)
            async with conn.transaction():
                for statement in filter(None, (s.strip() for s in sql.split(";"))):
                    await conn.execute(statement)
            await conn.execute("analyze")
            counts = {
                t: int(await conn.fetchval(f"select count(*) from public.{t}"))  # noqa: S608
                for t in ("devices", "firmware_releases", "firmware_rollouts")
            }
            args = (
                uuid.UUID("00000000-0000-4000-9000-000000000002"),
                uuid.UUID("00000000-0000-4000-8000-000000000001"),
            )
            plan = await conn.fetchval("explain (format json) " + DECISION, *args)
            # At 5 rollouts the planner rightly scans; the index it uses at scale:
            async with conn.transaction():
                await conn.execute("set local enable_seqscan = off")
                indexed = await conn.fetchval("explain (format json) " + DECISION, *args)
            async with conn.transaction():
                await conn.execute("set local role service_role")
                sql_offer = await _sql_offer(conn, requests)
        finally:
            await conn.close()
        cases = await _measure_app(bench_url, requests)
    finally:
        admin = await connect(with_database(url, "postgres"))
        try:
            await admin.execute(f"drop database if exists {quote_ident(name)} with (force)")
        finally:
            await admin.close()
    plan_doc = json.loads(plan) if isinstance(plan, str) else plan
    indexed_doc = json.loads(indexed) if isinstance(indexed, str) else indexed
    return {
        "server": redact(url),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "scale": counts,
        "requests_per_case": requests,
        "cases": cases,
        "firmware_offer_sql": sql_offer,
        "decision_plan": _plan_nodes(plan_doc[0]["Plan"]),
        "decision_plan_at_scale": _plan_nodes(indexed_doc[0]["Plan"]),
        "goal_delta_p50_ms": GOAL_DELTA_MS,
    }


def _plan_nodes(node: dict[str, Any]) -> list[str]:
    line = node["Node Type"] + (f" using {node['Index Name']}" if "Index Name" in node else "")
    if "Relation Name" in node:
        line += f" on {node['Relation Name']}"
    out = [line]
    for child in node.get("Plans", []):
        out += ["  " + c for c in _plan_nodes(child)]
    return out


def format_report(results: dict[str, Any]) -> str:
    lines = [
        f"opendot bench firmware — {results['scale']['devices']} Dots, "
        f"{results['scale']['firmware_releases']} releases, "
        f"{results['scale']['firmware_rollouts']} active rollouts; "
        f"{results['requests_per_case']} OTA requests per case at the API"
        f" (load average {results['load_average'][0]})",
        f"{'case':<14}{'p50 ms':>9}{'p99 ms':>9}{'p50 - today':>13}",
    ]
    for label, timing in results["cases"].items():
        delta = timing.get("delta_p50_ms")
        lines.append(
            f"{label:<14}{timing['p50_ms']:>9.3f}{timing['p99_ms']:>9.3f}"
            + (f"{delta:>+13.3f}" if delta is not None else "")
        )
    lines.append(f"goal: each case within {results['goal_delta_p50_ms']:g} ms of today's p50")
    sql = results["firmware_offer_sql"]
    lines.append(
        f"private.firmware_offer alone: p50 {sql['p50_ms']:.3f} ms, p99 {sql['p99_ms']:.3f} ms;"
        f" inside the server p50 {sql['server_p50_ms']:.3f} ms, p99 {sql['server_p99_ms']:.3f} ms"
    )
    lines.append("decision query plan (5 rollouts):")
    lines += ["  " + line for line in results["decision_plan"]]
    lines.append("decision query plan with sequential scans off (as with many rollouts):")
    lines += ["  " + line for line in results["decision_plan_at_scale"]]
    return "\n".join(lines)
