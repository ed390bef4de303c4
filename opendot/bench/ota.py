"""`opendot bench ota`: what the OTA bootstrap costs, and what its clean-up adds.

The bootstrap deletes up to 20 dead activation requests each time it creates
one (private.sweep_activation_requests), so OTA spam cannot fill the table and
no scheduler is needed. This measures whether that slows OTA: on a fresh
database it times `private.device_bootstrap` the way the API calls it (one
service-role transaction per request, no statement cache, as behind
Supabase's transaction pooler) for new devices

- with no dead requests (the sweep finds nothing), and
- with 20,000 dead requests waiting (every call deletes 20),

plus the sweep on its own. The figure that matters is the same-run ratio of
the two bootstrap medians (the two cases run on two databases, interleaved
in rounds). The databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
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

DEAD_ROWS = 20_000
ITERATIONS = 300
_SERVICE = (
    "begin; select set_config('request.jwt.claims', '{\"role\":\"service_role\"}', true),"
    " set_config('role', 'service_role', true)"
)
_BOOTSTRAP = (
    "select kind from private.device_bootstrap($1, $2, null, null, 'bench/1.0.0', $3, '1.0.0',"
    " 'bench', '{}'::jsonb, $4, $5, $6, 'od_dt_bench', $7, 300, 32)"
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_url_argument(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--iterations", type=int, default=ITERATIONS, help="bootstraps per case")


def run(args: argparse.Namespace) -> int:
    try:
        with resolve_url(args) as url:
            results = asyncio.run(measure(url, iterations=args.iterations))
    except DatabaseError as exc:
        print(f"opendot bench ota: {exc}", file=sys.stderr)
        return 1
    print(format_report(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _hex(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


async def _bootstraps(conn: asyncpg.Connection, count: int, tag: str) -> list[float]:
    samples = []
    for n in range(count):
        mac = f"{tag}-{n}"
        started = time.perf_counter()
        await conn.execute(_SERVICE)
        kind = await conn.fetchval(
            _BOOTSTRAP,
            mac,
            str(uuid.uuid4()),
            f"10.{n // 250 % 250}.{n % 250}.1",  # one device per address: no cap in play
            uuid.uuid4(),
            _hex(f"code:{tag}:{n}"),
            _hex(f"challenge:{tag}:{n}"),
            _hex(f"token:{tag}:{n}"),
        )
        await conn.execute("commit")
        samples.append((time.perf_counter() - started) * 1000)
        assert kind == "new", kind
    return samples


async def _dead(conn: asyncpg.Connection, rows: int, tag: str) -> None:
    await conn.execute(
        "insert into public.device_activation_requests (device_identifier, code_hash,"
        " challenge_hash, token_prefix, token_hash, status, expires_at, created_at)"
        " select $1 || n, encode(sha256(('c' || $1 || n)::bytea), 'hex'),"
        " encode(sha256(('h' || $1 || n)::bytea), 'hex'), 'od_dt_dead',"
        " encode(sha256(('t' || $1 || n)::bytea), 'hex'), 'pending',"
        " now() - interval '1 hour', now() - interval '2 hours'"
        " from generate_series(1, $2) n",
        tag,
        rows,
    )
    await conn.execute("analyze public.device_activation_requests")


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
    }


async def _fresh(url: str, tag: str) -> str:
    name = f"opendot_bench_ota_{tag}_{uuid.uuid4().hex[:8]}"
    admin = await connect(with_database(url, "postgres"))
    try:
        await admin.execute(f"create database {quote_ident(name)}")
    finally:
        await admin.close()
    bench_url = with_database(url, name)
    await migrate_async(bench_url)
    return bench_url


async def _drop(url: str, bench_url: str) -> None:
    name = bench_url.rsplit("/", 1)[-1]
    admin = await connect(with_database(url, "postgres"))
    try:
        await admin.execute(f"drop database if exists {quote_ident(name)} with (force)")
    finally:
        await admin.close()


async def _open(bench_url: str) -> asyncpg.Connection:
    # No statement cache (as behind the transaction pooler); commits do not wait
    # for the disk, whose noise on a shared machine would swamp a sub-ms difference.
    conn: asyncpg.Connection = await asyncpg.connect(
        bench_url, statement_cache_size=0, server_settings={"synchronous_commit": "off"}
    )
    return conn


async def measure(url: str, *, iterations: int = ITERATIONS) -> dict[str, Any]:
    """Bootstraps on two databases, one with a dead backlog, interleaved in rounds so
    the machine's load falls on both cases alike."""
    urls: list[str] = []
    try:
        urls.append(await _fresh(url, "clean"))
        urls.append(await _fresh(url, "busy"))
        clean_conn, busy_conn = await _open(urls[0]), await _open(urls[1])
        try:
            await _bootstraps(clean_conn, 30, "warm")
            await _bootstraps(busy_conn, 30, "warm")
            await _dead(busy_conn, DEAD_ROWS, "dead-")
            clean: list[float] = []
            busy: list[float] = []
            rounds = 6
            for r in range(rounds):
                clean += await _bootstraps(clean_conn, iterations // rounds, f"clean{r}")
                busy += await _bootstraps(busy_conn, iterations // rounds, f"busy{r}")
            left = await busy_conn.fetchval(
                "select count(*) from public.device_activation_requests"
                " where device_identifier like 'dead-%'"
            )
            sweeps = []
            for _ in range(iterations):
                started = time.perf_counter()
                await busy_conn.execute(_SERVICE)
                await busy_conn.fetchval("select private.sweep_activation_requests()")
                await busy_conn.execute("commit")
                sweeps.append((time.perf_counter() - started) * 1000)
        finally:
            await clean_conn.close()
            await busy_conn.close()
    finally:
        for bench_url in urls:
            await _drop(url, bench_url)
    clean_s, busy_s = _stats(clean), _stats(busy)
    return {
        "database": redact(with_database(url, "opendot_bench_ota_*")) + " (dropped)",
        "iterations": len(clean),
        "dead_rows": DEAD_ROWS,
        "bootstrap_no_dead_rows": clean_s,
        "bootstrap_sweeping": busy_s,
        "sweep_alone": _stats(sweeps),
        "dead_rows_deleted_by_bootstraps": DEAD_ROWS - int(left),
        "ratio_p50": round(busy_s["p50_ms"] / clean_s["p50_ms"], 2),
    }


def format_report(results: dict[str, Any]) -> str:
    def line(label: str, stats: dict[str, float]) -> str:
        return f"  {label:<34} p50 {stats['p50_ms']:6.2f} ms  p99 {stats['p99_ms']:6.2f} ms"

    dead = results["dead_rows"]
    return "\n".join(
        [
            f"OTA bootstrap, {results['iterations']} new devices per case ({results['database']})",
            line("no dead requests", results["bootstrap_no_dead_rows"]),
            line(f"{dead:,} dead, sweeping 20 per call", results["bootstrap_sweeping"])
            + f"  (x{results['ratio_p50']} of the clean p50)",
            line("the sweep alone (20 rows)", results["sweep_alone"]),
            f"  dead requests deleted by those bootstraps: "
            f"{results['dead_rows_deleted_by_bootstraps']:,}",
        ]
    )
