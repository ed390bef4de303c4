"""`opendot bench functions`: what the platform API costs on Lambda-like terms.

The machine this runs on is usually shared and noisy, so every figure is a
median over several interleaved runs, the load average is printed with it,
and each figure comes with a baseline measured in the same run (a ratio
survives noise that an absolute number does not):

- cold import: `import functions.handler` in a fresh interpreter, next to
  `import fastapi` and the floor `import fastapi, mangum, asyncpg` (runs
  interleaved; wall and CPU time). Bytecode is compiled first, as the Lambda
  package ships it. Then the first request a fresh environment serves: import
  plus one GET /api/platform-state (which opens the pool's connection and
  builds whatever was deferred), with the cost of a bare connection for scale;
- warm request: GET /api/platform-state through the Mangum handler (API
  Gateway HTTP API 2.0 events) for a user with 5 agents, 3 devices (2 bound)
  and 2 API keys, with the statement cache on (direct connection) and off (as
  behind a transaction pooler), next to GET /health through the same handler
  (the framework's own cost) and one asyncpg round trip;
- JWT: one cached ES256 Supabase token through the API's verifier, next to
  PyJWT's decode with the same pre-loaded key object and the bare ECDSA
  signature check; the local HS256 session token likewise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from shared.db.commands.target import add_url_argument, resolve_url

TARGET_IMPORT_MS = 300.0
TARGET_WARM_P50_MS = 10.0
TARGET_VERIFY_MS = 0.3
BENCH_SESSION_SECRET = "bench-session-secret-0123456789abcdef"  # noqa: S105 - bench only


def configure(parser: argparse.ArgumentParser) -> None:
    add_url_argument(parser)
    parser.add_argument("--requests", type=int, default=200, help="warm requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of warm requests and JWTs")
    parser.add_argument("--imports", type=int, default=7, help="cold interpreters per variant")
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=None,
        metavar="LOAD",
        help="first wait (up to --max-wait s) until the 1-minute load average is below LOAD",
    )
    parser.add_argument("--max-wait", type=float, default=300.0, help="seconds --quiet-load waits")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


# --- the machine ------------------------------------------------------------------------------


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def wait_for_quiet(threshold: float, max_wait_s: float) -> float:
    """Seconds waited until the 1-minute load dropped below `threshold` (or gave up)."""
    started = time.monotonic()
    while os.getloadavg()[0] >= threshold and time.monotonic() - started < max_wait_s:
        time.sleep(5.0)
    return time.monotonic() - started


def _progress(text: str) -> None:
    print(f"bench functions: {text} (load {'/'.join(map(str, load_average()))})", file=sys.stderr)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


# --- cold import and first request (fresh interpreters) ---------------------------------------

_IMPORT_CODE = """
import json, time
wall, cpu = time.perf_counter(), time.process_time()
import {modules}
print(json.dumps({{"wall": (time.perf_counter() - wall) * 1000,
                   "cpu": (time.process_time() - cpu) * 1000}}))
"""

# The floor plus the least any FastAPI app with a pydantic response model pays
# (FastAPI's route setup imports pydantic.v1 to reject v1 models, for one).
_APP_FLOOR_CODE = """
import json, time
wall, cpu = time.perf_counter(), time.process_time()
import asyncpg, mangum
from fastapi import FastAPI
from pydantic import BaseModel
class Ok(BaseModel):
    ok: bool = True
app = FastAPI()
@app.get("/health", response_model=Ok)
async def health() -> Ok:
    return Ok()
print(json.dumps({"wall": (time.perf_counter() - wall) * 1000,
                  "cpu": (time.process_time() - cpu) * 1000}))
"""

_FIRST_REQUEST_CODE = """
import json, sys, time
class Context:
    aws_request_id = "bench"
    function_name = "opendot-api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:local:0:function:opendot-api"
    def get_remaining_time_in_millis(self):
        return 30000
wall, cpu = time.perf_counter(), time.process_time()
from functions.handler import handler
out = {"wall": (time.perf_counter() - wall) * 1000, "cpu": (time.process_time() - cpu) * 1000}
event = json.loads(sys.argv[1])
for name in ("first", "second"):
    wall, cpu = time.perf_counter(), time.process_time()
    answer = handler(event, Context())
    out[name + "_wall"] = (time.perf_counter() - wall) * 1000
    out[name + "_cpu"] = (time.process_time() - cpu) * 1000
    out["status"] = answer["statusCode"]
print(json.dumps(out))
"""


def _python(code: str, env: dict[str, str], cwd: str, *args: str) -> dict[str, Any]:
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=cwd,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench interpreter failed: {result.stderr.strip()[-2000:]}")
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def _child_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "POSTGRES_URI": url,
            "PLATFORM_AUTH_REQUIRED": "true",
            "OPENDOT_SESSION_SECRET": BENCH_SESSION_SECRET,
            "OPENDOT_DB_POOL_MAX": "2",
            "OPENDOT_ENV": "test",
        }
    )
    return env


def cold_starts(url: str, event: dict[str, Any], runs: int) -> dict[str, Any]:
    """Interleaved fresh interpreters: fastapi, the floor, the handler, handler + first request."""
    env = _child_env(url)
    variants: dict[str, tuple[str, tuple[str, ...]]] = {
        "fastapi": (_IMPORT_CODE.format(modules="fastapi"), ()),
        "floor": (_IMPORT_CODE.format(modules="fastapi, mangum, asyncpg"), ()),
        "app_floor": (_APP_FLOOR_CODE, ()),
        "handler": (_IMPORT_CODE.format(modules="functions.handler"), ()),
        "first": (_FIRST_REQUEST_CODE, (json.dumps(event),)),
    }
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="opendot-bench-") as cwd:  # no stray .env
        # Compile bytecode once (the Lambda package ships it precompiled), even
        # when PYTHONDONTWRITEBYTECODE is set for the rest of this machine.
        warm_env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        _python(_FIRST_REQUEST_CODE, warm_env, cwd, json.dumps(event))
        for _ in range(runs):
            for name, (code, args) in variants.items():
                samples[name].append(_python(code, env, cwd, *args))
    if any(s["status"] != 200 for s in samples["first"]):
        raise RuntimeError("the first request in a fresh interpreter did not answer 200")

    def med(name: str, key: str) -> float:
        return median([s[key] for s in samples[name]])

    ratios = [
        h["cpu"] / f["cpu"] for h, f in zip(samples["handler"], samples["floor"], strict=True)
    ]
    return {
        "runs": runs,
        "fastapi_ms": med("fastapi", "wall"),
        "floor_ms": med("floor", "wall"),
        "floor_cpu_ms": med("floor", "cpu"),
        "app_floor_ms": med("app_floor", "wall"),
        "handler_ms": med("handler", "wall"),
        "handler_best_ms": min(s["wall"] for s in samples["handler"]),
        "handler_cpu_ms": med("handler", "cpu"),
        "handler_over_floor_cpu": median(ratios),
        "first_import_ms": med("first", "wall"),
        "first_request_ms": med("first", "first_wall"),
        "first_request_cpu_ms": med("first", "first_cpu"),
        "second_request_ms": med("first", "second_wall"),
        "cold_total_ms": median([s["wall"] + s["first_wall"] for s in samples["first"]]),
    }


# --- warm requests through the Mangum handler -------------------------------------------------


def _event(method: str, path: str, body: Any = None, token: str | None = None) -> dict[str, Any]:
    headers = {"content-type": "application/json", "host": "api.bench"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "bench",
            },
            "requestId": "bench",
            "stage": "$default",
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


class _Context:
    aws_request_id = "bench"
    function_name = "opendot-api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:local:0:function:opendot-api"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _handler(url: str, *, pooler: bool) -> Handler:
    from functions.handler import make_handler
    from functions.settings import ApiSettings

    values: dict[str, Any] = {
        "POSTGRES_URI": url,
        "PLATFORM_AUTH_REQUIRED": True,
        "OPENDOT_DB_POOL_MAX": 2,
        "OPENDOT_DB_POOLER": pooler,
        "OPENDOT_SESSION_SECRET": BENCH_SESSION_SECRET,
    }
    return make_handler(ApiSettings(_env_file=None, **values))  # type: ignore[call-arg]


def _call(handle: Handler, event: dict[str, Any], expect: int) -> dict[str, Any]:
    answer = handle(event, _Context())
    if answer["statusCode"] != expect:
        raise RuntimeError(f"{event['rawPath']}: {answer['statusCode']} {answer['body']}")
    body: dict[str, Any] = json.loads(answer["body"])
    return body


def seed_user(handle: Handler) -> str:
    """A realistic console user; returns its access token."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.test"
    token: str = _call(
        handle, _event("POST", "/api/auth/signup", {"email": email, "password": "bench pass"}), 201
    )["accessToken"]
    agents = [
        _call(
            handle,
            _event("POST", "/api/agents", {"name": f"Agent {n}", "description": "bench"}, token),
            201,
        )["agent"]
        for n in range(5)
    ]
    for n in range(3):
        device = _call(
            handle,
            _event(
                "POST", "/api/dot-devices", {"name": f"Dot {n}", "serialNumber": f"SN{n}"}, token
            ),
            201,
        )["device"]
        if n < 2:
            path = f"/api/dot-devices/{device['id']}"
            _call(handle, _event("PUT", path, {"boundAgentId": agents[n]["id"]}, token), 200)
    for n in range(2):
        _call(handle, _event("POST", "/api/api-keys", {"name": f"key {n}"}, token), 201)
    return token


def _close(handle: Handler) -> None:
    state = handle.state  # type: ignore[attr-defined]
    loop = state.get("loop")
    if loop is not None and not loop.is_closed():
        loop.run_until_complete(handle.app.state.services.db.close())  # type: ignore[attr-defined]
        loop.close()


def _time(handle: Handler, event: dict[str, Any], count: int) -> list[float]:
    """Milliseconds per invocation (the body is not parsed: that is the client's cost)."""
    context = _Context()
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        answer = handle(event, context)
        timings.append((time.perf_counter() - started) * 1000)
        if answer["statusCode"] != 200:
            raise RuntimeError(f"{event['rawPath']}: {answer['statusCode']} {answer['body']}")
    return timings


async def _round_trips(url: str, count: int) -> list[float]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        timings = []
        for _ in range(count):
            started = time.perf_counter()
            await conn.fetchval("select 1")
            timings.append((time.perf_counter() - started) * 1000)
        return timings
    finally:
        await conn.close()


async def _connect_ms(url: str, count: int = 5) -> float:
    import asyncpg

    timings = []
    for _ in range(count):
        started = time.perf_counter()
        conn = await asyncpg.connect(url)
        timings.append((time.perf_counter() - started) * 1000)
        await conn.close()
    return median(timings)


def warm_requests(url: str, token: str, count: int, rounds: int) -> dict[str, Any]:
    direct = _handler(url, pooler=False)
    pooled = _handler(url, pooler=True)
    state = _event("GET", "/api/platform-state", token=token)
    health = _event("GET", "/health")
    try:
        for handle in (direct, pooled):
            _time(handle, state, 30)
            _time(handle, health, 30)
        runs: dict[str, list[list[float]]] = {"direct": [], "pooled": [], "health": [], "rt": []}
        for _ in range(rounds):
            runs["direct"].append(_time(direct, state, count))
            runs["pooled"].append(_time(pooled, state, count))
            runs["health"].append(_time(direct, health, count))
            runs["rt"].append(asyncio.run(_round_trips(url, count)))
    finally:
        _close(direct)
        _close(pooled)

    def p50(name: str) -> float:
        return median([median(r) for r in runs[name]])

    def p99(name: str) -> float:
        return percentile([t for r in runs[name] for t in r], 0.99)

    return {
        "requests": count * rounds,
        "p50_ms": p50("direct"),
        "p99_ms": p99("direct"),
        "pooler_p50_ms": p50("pooled"),
        "pooler_p99_ms": p99("pooled"),
        "health_p50_ms": p50("health"),
        "round_trip_p50_ms": p50("rt"),
        "state_over_health": median(
            [median(s) / median(h) for s, h in zip(runs["direct"], runs["health"], strict=True)]
        ),
    }


# --- JWT verification ---------------------------------------------------------------------------


async def verify_costs(rounds: int, iterations: int = 600) -> dict[str, float]:
    import jwt
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from jwt.algorithms import ECAlgorithm

    from functions.jwks import parse_jwks
    from functions.settings import ApiSettings
    from functions.tokens_jwt import TokenVerifier

    url = "https://bench.supabase.test"
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key()
    jwk = json.loads(ECAlgorithm.to_jwk(public))
    jwk.update({"kid": "bench", "alg": "ES256", "use": "sig"})
    values: dict[str, Any] = {"SUPABASE_URL": url, "OPENDOT_SESSION_SECRET": BENCH_SESSION_SECRET}
    verifier = TokenVerifier(ApiSettings(_env_file=None, **values))  # type: ignore[call-arg]
    assert verifier.jwks is not None
    verifier.jwks.install(parse_jwks({"keys": [jwk]}))
    now = int(time.time())
    claims = {
        "iss": f"{url}/auth/v1",
        "aud": "authenticated",
        "sub": str(uuid.uuid4()),
        "role": "authenticated",
        "exp": now + 3600,
        "iat": now,
    }
    token = jwt.encode(claims, private, algorithm="ES256", headers={"kid": "bench"})
    signing_input, _, signature_b64 = token.rpartition(".")
    raw = jwt.utils.base64url_decode(signature_b64)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    local, _ = verifier.issue_local(
        user_id=str(uuid.uuid4()), email="bench@example.test", name="Bench", session_id="j"
    )
    secret = BENCH_SESSION_SECRET
    settings = verifier.settings

    async def api_es256() -> None:
        await verifier.verify(token)

    async def api_hs256() -> None:
        await verifier.verify(local)

    def pyjwt_es256() -> None:
        jwt.decode(
            token,
            public,
            algorithms=["ES256"],
            audience="authenticated",
            issuer=f"{url}/auth/v1",
            options={"require": ["exp", "sub", "iss", "aud"]},
        )

    def pyjwt_hs256() -> None:
        jwt.decode(
            local,
            secret,
            algorithms=["HS256"],
            audience=settings.session_audience,
            issuer=settings.session_issuer,
            options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
        )

    def ecdsa() -> None:
        public.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))

    async def measure_async(fn: Callable[[], Any]) -> float:
        started = time.perf_counter()
        for _ in range(iterations):
            await fn()
        return (time.perf_counter() - started) * 1000 / iterations

    def measure(fn: Callable[[], None]) -> float:
        started = time.perf_counter()
        for _ in range(iterations):
            fn()
        return (time.perf_counter() - started) * 1000 / iterations

    for _ in range(50):
        await api_es256()
        await api_hs256()
    samples: dict[str, list[float]] = {k: [] for k in ("es", "es_bare", "ecdsa", "hs", "hs_bare")}
    for _ in range(rounds):
        samples["es"].append(await measure_async(api_es256))
        samples["es_bare"].append(measure(pyjwt_es256))
        samples["ecdsa"].append(measure(ecdsa))
        samples["hs"].append(await measure_async(api_hs256))
        samples["hs_bare"].append(measure(pyjwt_hs256))
    ratios = [a / b for a, b in zip(samples["es"], samples["es_bare"], strict=True)]
    return {
        "es256_ms": median(samples["es"]),
        "es256_pyjwt_ms": median(samples["es_bare"]),
        "es256_over_pyjwt": median(ratios),
        "ecdsa_ms": median(samples["ecdsa"]),
        "hs256_ms": median(samples["hs"]),
        "hs256_pyjwt_ms": median(samples["hs_bare"]),
    }


# --- database lifecycle -------------------------------------------------------------------------


def _fresh_database(server_url: str) -> tuple[str, str]:
    from shared.db.connection import with_database

    name = f"opendot_bench_fn_{uuid.uuid4().hex[:10]}"
    return name, with_database(server_url, name)


async def _create_and_migrate(url: str) -> None:
    from shared.db.connection import create_database_if_missing
    from shared.db.migrate import migrate_async

    await create_database_if_missing(url)
    await migrate_async(url)


async def _drop(server_url: str, name: str) -> None:
    from shared.db.connection import connect, quote_ident, with_database

    conn = await connect(with_database(server_url, "postgres"))
    try:
        await conn.execute(f"drop database if exists {quote_ident(name)} with (force)")
    finally:
        await conn.close()


# --- report -------------------------------------------------------------------------------------


def _rows(
    cold: dict[str, Any], warm: dict[str, Any], jwt_: dict[str, float], loads: dict[str, Any]
) -> list[dict[str, Any]]:
    def row(metric: str, ms: float, target: float | None = None, **extra: Any) -> dict[str, Any]:
        return {"metric": metric, "ms": round(ms, 4), "target_ms": target, **extra}

    return [
        row(
            f"cold import functions.handler (median of {cold['runs']}, load {loads['cold'][0]})",
            cold["handler_ms"],
            TARGET_IMPORT_MS,
            cpu_ms=round(cold["handler_cpu_ms"], 1),
            load=loads["cold"],
        ),
        row("  best run", cold["handler_best_ms"]),
        row("  floor: import fastapi, mangum, asyncpg", cold["floor_ms"]),
        row("  import fastapi alone", cold["fastapi_ms"]),
        row("  floor + a one-route FastAPI app with a pydantic model", cold["app_floor_ms"]),
        row(
            f"  CPU time above the floor (handler = {cold['handler_over_floor_cpu']:.2f}x floor)",
            cold["handler_cpu_ms"] - cold["floor_cpu_ms"],
            ratio=round(cold["handler_over_floor_cpu"], 3),
            note="ms = CPU time above the floor",
        ),
        row("first GET /api/platform-state after a cold import", cold["first_request_ms"]),
        row("  of which: opening one database connection", warm["connect_ms"]),
        row("  cold start total (import + first request)", cold["cold_total_ms"]),
        row("  second request in that interpreter", cold["second_request_ms"]),
        row(
            f"warm GET /api/platform-state p50 (Mangum, load {loads['warm'][0]})",
            warm["p50_ms"],
            TARGET_WARM_P50_MS,
            load=loads["warm"],
        ),
        row("  p99", warm["p99_ms"]),
        row("  p50 without statement cache (transaction pooler)", warm["pooler_p50_ms"]),
        row("  p99 without statement cache (transaction pooler)", warm["pooler_p99_ms"]),
        row(
            f"  GET /health via Mangum, 3 round trips (state = {warm['state_over_health']:.2f}x)",
            warm["health_p50_ms"],
            ratio=round(warm["state_over_health"], 3),
        ),
        row("  floor: one asyncpg round trip (select 1)", warm["round_trip_p50_ms"]),
        row(
            f"cached ES256 verify (API verifier, load {loads['jwt'][0]})",
            jwt_["es256_ms"],
            TARGET_VERIFY_MS,
            load=loads["jwt"],
        ),
        row(
            f"  PyJWT decode, pre-loaded key (API = {jwt_['es256_over_pyjwt']:.2f}x)",
            jwt_["es256_pyjwt_ms"],
            ratio=round(jwt_["es256_over_pyjwt"], 3),
        ),
        row("  bare ECDSA P-256 signature check", jwt_["ecdsa_ms"]),
        row("local HS256 session verify (API verifier)", jwt_["hs256_ms"]),
        row("  PyJWT HS256 decode", jwt_["hs256_pyjwt_ms"]),
    ]


def run(args: argparse.Namespace) -> int:
    waited = 0.0
    if args.quiet_load is not None:
        waited = wait_for_quiet(args.quiet_load, args.max_wait)
    loads: dict[str, Any] = {"start": load_average(), "waited_s": round(waited)}
    _progress("JWT verification")
    loads["jwt"] = load_average()
    jwt_costs = asyncio.run(verify_costs(max(args.rounds, 3)))
    with resolve_url(args) as server_url:
        name, url = _fresh_database(server_url)
        asyncio.run(_create_and_migrate(url))
        try:
            seeder = _handler(url, pooler=False)
            try:
                token = seed_user(seeder)
            finally:
                _close(seeder)
            _progress("warm requests")
            loads["warm"] = load_average()
            warm = warm_requests(url, token, args.requests, max(args.rounds, 1))
            warm["connect_ms"] = asyncio.run(_connect_ms(url))
            _progress("cold imports")
            loads["cold"] = load_average()
            state_event = _event("GET", "/api/platform-state", token=token)
            cold = cold_starts(url, state_event, max(args.imports, 1))
        finally:
            asyncio.run(_drop(server_url, name))
    loads["end"] = load_average()
    rows = _rows(cold, warm, jwt_costs, loads)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"load average (1/5/15 min): start {'/'.join(map(str, loads['start']))}, "
        f"end {'/'.join(map(str, loads['end']))} on {os.cpu_count()} CPUs"
        + (f"; waited {loads['waited_s']} s for quiet" if args.quiet_load is not None else "")
    )
    print(f"{'metric':<58} {'ms':>10} {'target':>8}  ok")
    for item in rows:
        target = item["target_ms"]
        verdict = "" if target is None else ("yes" if item["ms"] < target else "NO")
        shown = f"< {target:g}" if target is not None else ""
        print(f"{item['metric']:<58} {item['ms']:>10.3f} {shown:>8}  {verdict}")
    return 0
