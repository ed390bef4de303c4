"""`opendot bench console`: what the web console costs a person.

- JavaScript shipped, gzipped (level 9, as a CDN would serve it): the first
  page (the entry script and what index.html preloads) and everything built
  (supabase-js is a separate chunk, fetched only where Supabase Auth is on).
- History at scale: a Dot with 10,000 turns (2,000 sessions of 5 turns); the
  first page of `GET /api/sessions?deviceId=…` through the real API app
  (in process, real PostgreSQL, RLS on), its next page by cursor, one
  session's turns and the latency window, p50 / p95 each, with
  `GET /api/agents` for the same user as a same-run baseline.
- The Dots page's live state is a poll of `GET /api/dot-devices` every 3 s while
  the page is visible (hidden tabs do not poll); its cost is measured beside.
- Cold load to an interactive agent list: Debian's Chromium, a fresh profile
  each time, opening the console served as `opendot up` serves it, signed in
  (the session in storage), until the agent list is on screen.

Needs a built console (`make console`) for the first and last figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import socket
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from opendot import console
from shared.db.commands.target import add_url_argument, resolve_url
from shared.db.connection import connect, quote_ident, with_database
from shared.db.migrate import migrate

TARGET_FIRST_PAGE_KIB = 200.0
TARGET_TOTAL_KIB = 400.0
TARGET_HISTORY_P50_MS = 300.0
TARGET_COLD_LOAD_MS = 1000.0
SESSIONS, TURNS_PER_SESSION = 2000, 5
CHROMIUM = "/usr/bin/chromium"
# What Debian's Chromium needs here: headless, no sandbox as root, and no calls home.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def configure(parser: argparse.ArgumentParser) -> None:
    add_url_argument(parser)
    parser.add_argument("--requests", type=int, default=50, help="timed requests per endpoint")
    parser.add_argument("--loads", type=int, default=5, help="cold browser loads")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")


# --- JavaScript shipped ------------------------------------------------------------------------


def _gzip_kib(path: Path) -> float:
    return len(gzip.compress(path.read_bytes(), compresslevel=9)) / 1024


def shipped(dist: Path) -> dict[str, Any]:
    index = (dist / "index.html").read_text()
    first = sorted(set(re.findall(r'(?:src|href)="\./(assets/[^"]+\.(?:js|css))"', index)))
    scripts = sorted(p for p in (dist / "assets").glob("*.js"))
    first_js = [dist / f for f in first if f.endswith(".js")]
    return {
        "first_page_js_kib": round(sum(_gzip_kib(p) for p in first_js), 1),
        "first_page_css_kib": round(
            sum(_gzip_kib(dist / f) for f in first if f.endswith(".css")), 1
        ),
        "total_js_kib": round(sum(_gzip_kib(p) for p in scripts), 1),
        "chunks": {p.name: round(_gzip_kib(p), 1) for p in scripts},
    }


# --- history at 10,000 turns -------------------------------------------------------------------

_LOAD = """
with s as (
  insert into public.voice_sessions (id, user_id, kind, agent_id, device_id, status, started_at,
                                     ended_at)
  select gen_random_uuid(), $1, 'device', $2, $3, 'closed',
         now() - make_interval(mins => g), now() - make_interval(mins => g) + interval '40 s'
  from generate_series(1, $4) g
  returning id, started_at
)
insert into public.voice_turns (session_id, turn_index, transcript, reply_text, outcome,
  speech_end_at, stt_final_at, llm_first_token_at, first_chunk_at, first_audio_at, ended_at)
select s.id, t, 'what is the weather like today', '(echo) you said it', 'completed',
       s.started_at + make_interval(secs => t * 6),
       s.started_at + make_interval(secs => t * 6 + 0.12 + random() * 0.05),
       s.started_at + make_interval(secs => t * 6 + 0.2),
       s.started_at + make_interval(secs => t * 6 + 0.25),
       s.started_at + make_interval(secs => t * 6 + 0.4 + random() * 0.1),
       s.started_at + make_interval(secs => t * 6 + 2)
from s, generate_series(0, $5 - 1) t
"""


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
    }


async def _history(url: str, requests: int) -> tuple[dict[str, Any], dict[str, Any]]:
    import httpx

    from functions.app import create_app
    from functions.settings import ApiSettings

    settings = ApiSettings(  # type: ignore[call-arg]
        _env_file=None, OPENDOT_ENV="test", POSTGRES_URI=url, PLATFORM_AUTH_REQUIRED=True
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://api.bench") as client:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.test"
        signup = await client.post(
            "/api/auth/signup", json={"email": email, "password": "bench-password-1"}
        )
        body = signup.json()
        headers = {"Authorization": f"Bearer {body['accessToken']}"}
        agent = (await client.post("/api/agents", json={"name": "Bench"}, headers=headers)).json()[
            "agent"
        ]
        device = (
            await client.post(
                "/api/dot-devices",
                json={"name": "Busy Dot", "serialNumber": "SN-BENCH"},
                headers=headers,
            )
        ).json()["device"]
        conn = await connect(url)
        try:
            ids = [uuid.UUID(x) for x in (body["user"]["id"], agent["id"], device["id"])]
            await conn.execute(_LOAD, *ids, SESSIONS, TURNS_PER_SESSION)
            await conn.execute("analyze")
            turns = await conn.fetchval("select count(*) from public.voice_turns")
        finally:
            await conn.close()
        first = (
            await client.get(f"/api/sessions?deviceId={device['id']}&limit=20", headers=headers)
        ).json()
        page = f"/api/sessions?deviceId={device['id']}&limit=20"
        targets = {
            "sessions_first_page": page,
            "sessions_next_page": f"{page}&before={first['next']}",
            "session_turns": f"/api/sessions/{first['sessions'][0]['id']}",
            "latency_last_100": f"/api/sessions/latency?deviceId={device['id']}",
            "devices_poll": "/api/dot-devices",  # what the Dots page asks every 3 s
            "agents_baseline": "/api/agents",
        }
        samples: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(3):  # warm the pool and caches
            for path in targets.values():
                await client.get(path, headers=headers)
        for _ in range(requests):
            for name, path in targets.items():  # interleaved, so noise hits all alike
                started = time.perf_counter()
                answer = await client.get(path, headers=headers)
                samples[name].append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    raise RuntimeError(f"{path}: {answer.status_code} {answer.text}")
        results = {name: _stats(values) for name, values in samples.items()}
        results["turns"] = int(turns)
        login = {"email": email, "password": "bench-password-1"}
    await app.state.services.db.close()
    return results, login


# --- cold load in Chromium ---------------------------------------------------------------------


def cold_load(url: str, login: dict[str, str], loads: int) -> dict[str, Any]:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from functions.app import create_app
    from functions.settings import ApiSettings

    api_port, console_port = _free_port(), _free_port()
    settings = ApiSettings(  # type: ignore[call-arg]
        _env_file=None, OPENDOT_ENV="test", POSTGRES_URI=url, PLATFORM_AUTH_REQUIRED=True,
        OPENDOT_CORS_ORIGINS=",".join(console.origins(console_port)),  # type: ignore[arg-type]
    )  # fmt: skip
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=api_port, log_level="warning")
    )
    api_thread = threading.Thread(target=server.run, daemon=True)
    api_thread.start()
    while not server.started:
        time.sleep(0.05)
    web = console.ConsoleServer(console_port, console.ConsoleTarget(api_port, 1), host="127.0.0.1")
    web.start()
    samples: list[float] = []
    try:
        import httpx

        session = httpx.post(f"http://127.0.0.1:{api_port}/api/auth/login", json=login).json()
        stored = json.dumps(
            {
                "accessToken": session["accessToken"],
                "refreshToken": session["refreshToken"],
                "expiresAt": session["expiresAt"],
                "user": {"email": login["email"], "displayName": "Bench"},
            }
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            for _ in range(loads):
                context = browser.new_context()
                context.add_init_script(
                    f"localStorage.setItem('opendot.session', {json.dumps(stored)})"
                )
                page = context.new_page()
                page.goto(f"http://localhost:{console_port}/#/agents", wait_until="commit")
                page.locator("ul[aria-label='Your agents']").wait_for()
                samples.append(page.evaluate("performance.now()"))
                context.close()
            browser.close()
    finally:
        web.stop()
        server.should_exit = True
        api_thread.join(timeout=10)
    return {**_stats(samples), "loads": loads}


# --- the command -------------------------------------------------------------------------------


async def _database(url: str) -> tuple[str, str]:
    name = f"opendot_bench_console_{os.getpid()}"
    admin = await connect(with_database(url, "postgres"))
    try:
        await admin.execute(f"drop database if exists {quote_ident(name)} with (force)")
        await admin.execute(f"create database {quote_ident(name)}")
    finally:
        await admin.close()
    return name, with_database(url, name)


async def _drop(url: str, name: str) -> None:
    admin = await connect(with_database(url, "postgres"))
    try:
        await admin.execute(f"drop database if exists {quote_ident(name)} with (force)")
    finally:
        await admin.close()


def measure(url: str, requests: int, loads: int) -> dict[str, Any]:
    results: dict[str, Any] = {"load_average": [round(x, 2) for x in os.getloadavg()]}
    dist = console.dist_dir()
    if console.built(dist):
        results["shipped"] = shipped(dist)
    name, bench_url = asyncio.run(_database(url))
    try:
        migrate(bench_url)
        results["history"], login = asyncio.run(_history(bench_url, requests))
        if console.built(dist) and Path(CHROMIUM).exists():
            results["cold_load"] = cold_load(bench_url, login, loads)
    finally:
        asyncio.run(_drop(url, name))
    return results


def format_report(r: dict[str, Any]) -> str:
    lines = [f"bench console (load {'/'.join(map(str, r['load_average']))})"]
    s = r.get("shipped")
    if s:
        lines.append(
            f"  JS shipped, gzip: first page {s['first_page_js_kib']} KiB"
            f" (target <= {TARGET_FIRST_PAGE_KIB:g}), total {s['total_js_kib']} KiB"
            f" (target <= {TARGET_TOTAL_KIB:g}); CSS {s['first_page_css_kib']} KiB"
        )
    h = r["history"]
    lines.append(f"  history at {h['turns']} turns on one Dot (API in process, RLS on):")
    for name in (
        "sessions_first_page",
        "sessions_next_page",
        "session_turns",
        "latency_last_100",
        "devices_poll",
        "agents_baseline",
    ):
        lines.append(
            f"    {name:<20} p50 {h[name]['p50_ms']:7.2f} ms  p95 {h[name]['p95_ms']:7.2f} ms"
        )
    c = r.get("cold_load")
    if c:
        lines.append(
            f"  cold load to the agent list (Chromium, fresh profile): p50 {c['p50_ms']:.0f} ms,"
            f" p95 {c['p95_ms']:.0f} ms over {c['loads']} loads (target < {TARGET_COLD_LOAD_MS:g})"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    with resolve_url(args) as url:
        results = measure(url, args.requests, args.loads)
    print(format_report(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser()
    configure(parser)
    sys.exit(run(parser.parse_args()))
