"""`opendot bench functions`: what the platform API costs on Lambda-like terms.

- cold import: `import functions.handler` in a fresh interpreter (what a Lambda
  init phase pays), best and median of several runs, with FastAPI's own import
  for scale;
- warm request: p50/p99 of GET /api/platform-state through the Mangum handler
  (API Gateway HTTP API 2.0 events) for a user with 5 agents, 3 devices (2
  bound) and 2 API keys, on a freshly migrated database that is dropped after;
- JWT: one cached ES256 Supabase token verification through the API's verifier
  (JWKS already cached), and PyJWT's bare decode for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

from shared.db.commands.target import add_url_argument, resolve_url

TARGET_IMPORT_MS = 300.0
TARGET_WARM_P50_MS = 10.0
TARGET_VERIFY_MS = 0.3


def configure(parser: argparse.ArgumentParser) -> None:
    add_url_argument(parser)
    parser.add_argument("--requests", type=int, default=300, help="warm requests to time")
    parser.add_argument("--imports", type=int, default=5, help="cold import runs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _import_ms(module: str, runs: int) -> list[float]:
    code = (
        "import time; t = time.perf_counter(); "
        f"import {module}; print((time.perf_counter() - t) * 1000)"
    )
    out = []
    for _ in range(runs):
        result = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        out.append(float(result.stdout.strip().splitlines()[-1]))
    return out


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


def _warm_requests(url: str, count: int) -> dict[str, float]:
    from functions.handler import make_handler
    from functions.settings import ApiSettings

    settings = ApiSettings(  # type: ignore[call-arg]
        _env_file=None, POSTGRES_URI=url, PLATFORM_AUTH_REQUIRED=True, OPENDOT_DB_POOL_MAX=2
    )
    handle = make_handler(settings)
    ctx = _Context()

    def call(event: dict[str, Any], expect: int) -> dict[str, Any]:
        answer = handle(event, ctx)
        if answer["statusCode"] != expect:
            raise RuntimeError(f"{event['rawPath']}: {answer['statusCode']} {answer['body']}")
        body: dict[str, Any] = json.loads(answer["body"])
        return body

    signup = call(
        _event(
            "POST",
            "/api/auth/signup",
            {"email": f"bench-{uuid.uuid4().hex[:8]}@example.test", "password": "bench pass"},
        ),
        201,
    )
    token = signup["accessToken"]
    agents = [
        call(
            _event("POST", "/api/agents", {"name": f"Agent {n}", "description": "bench"}, token),
            201,
        )["agent"]
        for n in range(5)
    ]
    for n in range(3):
        device = call(
            _event(
                "POST", "/api/dot-devices", {"name": f"Dot {n}", "serialNumber": f"SN{n}"}, token
            ),
            201,
        )["device"]
        if n < 2:
            call(
                _event(
                    "PUT",
                    f"/api/dot-devices/{device['id']}",
                    {"boundAgentId": agents[n]["id"]},
                    token,
                ),
                200,
            )
    for n in range(2):
        call(_event("POST", "/api/api-keys", {"name": f"key {n}"}, token), 201)
    state_event = _event("GET", "/api/platform-state", token=token)
    for _ in range(30):
        call(state_event, 200)
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        call(state_event, 200)
        timings.append((time.perf_counter() - started) * 1000)
    loop = handle.state["loop"]  # type: ignore[attr-defined]
    loop.run_until_complete(handle.app.state.services.db.close())  # type: ignore[attr-defined]
    loop.close()
    timings.sort()
    return {
        "p50": statistics.median(timings),
        "p99": timings[min(len(timings) - 1, int(len(timings) * 0.99))],
    }


async def _verify_cost(iterations: int = 3000) -> dict[str, float]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    from functions.jwks import parse_jwks
    from functions.settings import ApiSettings
    from functions.tokens_jwt import TokenVerifier

    url = "https://bench.supabase.test"
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": "bench", "alg": "ES256", "use": "sig"})
    verifier = TokenVerifier(
        ApiSettings(_env_file=None, SUPABASE_URL=url, OPENDOT_LOCAL_AUTH_DISABLED=True)  # type: ignore[call-arg]
    )
    assert verifier.jwks is not None
    verifier.jwks._state.keys = parse_jwks({"keys": [jwk]})
    verifier.jwks._state.fetched_at = time.monotonic()
    verifier.jwks._state.attempted_at = time.monotonic()
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": f"{url}/auth/v1",
            "aud": "authenticated",
            "sub": str(uuid.uuid4()),
            "role": "authenticated",
            "exp": now + 3600,
            "iat": now,
        },
        private,
        algorithm="ES256",
        headers={"kid": "bench"},
    )
    public = private.public_key()
    for _ in range(100):
        await verifier.verify(token)
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(iterations // 5):
            await verifier.verify(token)
        samples.append((time.perf_counter() - started) * 1000 / (iterations // 5))
    bare = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(iterations // 5):
            jwt.decode(token, public, algorithms=["ES256"], audience="authenticated")
        bare.append((time.perf_counter() - started) * 1000 / (iterations // 5))
    return {"verify": statistics.median(samples), "bare_decode": statistics.median(bare)}


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


def run(args: argparse.Namespace) -> int:
    imports = _import_ms("functions.handler", args.imports)
    fastapi_only = _import_ms("fastapi", args.imports)
    verify = asyncio.run(_verify_cost())
    with resolve_url(args) as server_url:
        name, url = _fresh_database(server_url)
        asyncio.run(_create_and_migrate(url))
        try:
            warm = _warm_requests(url, args.requests)
        finally:
            asyncio.run(_drop(server_url, name))
    rows = [
        ("cold import functions.handler (best)", min(imports), TARGET_IMPORT_MS),
        ("cold import functions.handler (median)", statistics.median(imports), TARGET_IMPORT_MS),
        ("  of which: import fastapi alone (median)", statistics.median(fastapi_only), None),
        ("warm GET /api/platform-state p50 (Mangum)", warm["p50"], TARGET_WARM_P50_MS),
        ("warm GET /api/platform-state p99 (Mangum)", warm["p99"], None),
        ("cached ES256 verify (API verifier)", verify["verify"], TARGET_VERIFY_MS),
        ("  PyJWT bare ES256 decode", verify["bare_decode"], None),
    ]
    if args.json:
        print(
            json.dumps(
                [{"metric": m, "ms": round(v, 4), "target_ms": t} for m, v, t in rows], indent=2
            )
        )
        return 0
    print(f"{'metric':<46} {'ms':>10} {'target':>9}  ok")
    for metric, value, target in rows:
        verdict = "" if target is None else ("yes" if value < target else "NO")
        shown = f"< {target:g}" if target is not None else ""
        print(f"{metric:<46} {value:>10.3f} {shown:>9}  {verdict}")
    return 0
