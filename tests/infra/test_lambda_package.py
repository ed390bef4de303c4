"""Build the Lambda zip once per session and run the handler FROM the zip.

The handler runs in a separate interpreter started with `-S` (no site-packages
at all) and PYTHONPATH set to the unzipped artefact only, so anything the
package forgot to include fails here instead of on AWS.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.infra.conftest import RUNNING_PYTHON, TIME_UNIT, base_python, load_builder

ROOT = Path(__file__).resolve().parents[2]

# Reads a JSON list of payload-2.0 events on stdin, runs them through one
# imported handler (like one warm Lambda execution environment) and prints the
# responses plus where the modules came from.
INVOKER = r"""
import json, sys, types
events = json.load(sys.stdin)
from functions.handler import handler
import functions, fastapi, mangum
context = types.SimpleNamespace(
    aws_request_id="test-request", function_name="opendot-api", memory_limit_in_mb=1024,
    invoked_function_arn="arn:aws:lambda:eu-west-1:000000000000:function:opendot-api",
    get_remaining_time_in_millis=lambda: 25000,
)
responses = [handler(event, context) for event in events]
try:
    import numpy  # noqa: F401
    leaked = True
except ImportError:
    leaked = False
json.dump({
    "responses": responses,
    "origins": {m.__name__: m.__file__ for m in (functions, fastapi, mangum)},
    "numpy_importable": leaked,
}, sys.stdout)
"""


def test_package_holds_only_functions_shared_and_core_dependencies(
    lambda_build: tuple[Any, Path],
) -> None:
    report, unzipped = lambda_build
    top = {p.name for p in unzipped.iterdir()}
    assert {"functions", "shared", "fastapi", "mangum", "asyncpg", "jwt", "argon2"} <= top
    excluded = ("runtime", "opendot", "numpy", "onnxruntime", "uvicorn", "tests", "bin", "supabase")
    for name in excluded:
        assert name not in top, name
    # The benches and the `up` supervisor live in opendot/, above the deployables.
    for ours in ("functions", "shared"):
        assert not list((unzipped / ours).rglob("bench*")), ours
    assert not (unzipped / "shared" / "up.py").exists()
    # Bytecode: only what the build compiled for the target interpreter, as
    # unchecked-hash .pyc (valid whatever mtime the zip gives the sources).
    magic = importlib.util.MAGIC_NUMBER
    pycs = list(unzipped.rglob("*.pyc"))
    assert pycs, "the build precompiles when it runs on the target Python"
    for pyc in pycs:
        header = pyc.read_bytes()[:8]
        assert header[:4] == magic and int.from_bytes(header[4:8], "little") == 0b01, pyc
        assert pyc.parent.name == "__pycache__"
        source = pyc.parent.parent / (pyc.name.split(".")[0] + ".py")
        assert source.is_file(), pyc
    assert report.zipped_bytes < 50 * 2**20
    assert report.unzipped_bytes < 250 * 2**20
    native = [p.name for p in unzipped.rglob("*.so")]
    assert native, "expected compiled extensions (asyncpg, pydantic-core, cryptography)"
    tag = f"cpython-{RUNNING_PYTHON.replace('.', '')}-x86_64-linux-gnu"
    for name in native:
        assert tag in name or ".abi3." in name or "-linux-gnu" not in name, name


def test_zip_is_reproducible(lambda_build: tuple[Any, Path], tmp_path: Path) -> None:
    report, unzipped = lambda_build
    builder = load_builder()
    again = tmp_path / "again.zip"
    builder.write_zip(unzipped, again)
    assert again.read_bytes() == Path(report.zip_path).read_bytes()


def _event(
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    all_headers = {"host": "api.example.test", "user-agent": "opendot-tests", **(headers or {})}
    if body is not None:
        all_headers["content-type"] = "application/json"
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}" if path == "/health" else "ANY /api/{proxy+}",
        "rawPath": path,
        "rawQueryString": "",
        "cookies": [],
        "headers": all_headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "testapi",
            "domainName": "api.example.test",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "opendot-tests",
            },
            "requestId": secrets.token_hex(8),
            "routeKey": "ANY /api/{proxy+}",
            "stage": "$default",
            "time": "25/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795564800000,
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def _invoke(
    unzipped: Path, environment: Mapping[str, str], events: Sequence[dict[str, Any]], cwd: Path
) -> dict[str, Any]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(unzipped)}
    env.update(environment)
    result = subprocess.run(
        [base_python(), "-S", "-c", INVOKER],
        input=json.dumps(list(events)),
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60 * TIME_UNIT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    output: dict[str, Any] = json.loads(result.stdout)
    return output


def _body(response: Mapping[str, Any]) -> Any:
    text = response["body"]
    if response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    return json.loads(text) if text else None


def test_handler_from_the_artefact_serves_payload_2_events(
    lambda_build: tuple[Any, Path], database_url: str, tmp_path: Path
) -> None:
    _, unzipped = lambda_build
    environment = {
        "OPENDOT_ENV": "test",
        "POSTGRES_URI": database_url,
        "OPENDOT_RUNTIME_INTERNAL_SECRET": secrets.token_urlsafe(32),
        "OPENDOT_SESSION_SECRET": secrets.token_urlsafe(32),
        "OPENDOT_SECRETS_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PLATFORM_AUTH_REQUIRED": "true",
    }
    email = f"lambda-{secrets.token_hex(4)}@example.test"
    password = secrets.token_urlsafe(12)

    # One warm execution environment: health twice (the lazily created pool is
    # reused), then a sign-up and a login (argon2id from the manylinux wheel).
    first = _invoke(
        unzipped,
        environment,
        [
            _event("GET", "/health"),
            _event("GET", "/api/health"),
            _event("POST", "/api/auth/signup", {"email": email, "password": password}),
            _event("POST", "/api/auth/login", {"email": email, "password": password}),
            _event("POST", "/api/auth/login", {"email": email, "password": password + "x"}),
        ],
        tmp_path,
    )
    for module, origin in first["origins"].items():
        assert origin.startswith(str(unzipped)), (module, origin)
    assert first["numpy_importable"] is False
    health, api_health, signup, login, bad_login = first["responses"]
    assert health["statusCode"] == 200 and _body(health) == {"ok": True}
    assert api_health["statusCode"] == 200 and _body(api_health) == {"ok": True}
    assert signup["statusCode"] == 201, _body(signup)
    assert login["statusCode"] == 200, _body(login)
    assert bad_login["statusCode"] == 401
    token = _body(login)["accessToken"]

    # A second, cold execution environment accepts the token the first issued
    # (nothing lives in process memory) and the internal API refuses a caller
    # without the runtime secret.
    second = _invoke(
        unzipped,
        environment,
        [
            _event("GET", "/api/auth/session", headers={"authorization": f"Bearer {token}"}),
            _event("GET", "/api/auth/session"),
            _event(
                "POST",
                "/api/internal/device-runtime/state",
                {"deviceId": "00000000-0000-4000-8000-00000000dead", "availability": "online"},
                headers={"x-opendot-runtime-secret": "wrong"},
            ),
        ],
        tmp_path,
    )
    session, anonymous, internal = second["responses"]
    assert session["statusCode"] == 200, _body(session)
    assert _body(session)["user"]["email"] == email
    assert anonymous["statusCode"] == 401
    assert internal["statusCode"] == 401
