"""The API image's commands work with what that image holds, and nothing more.

`infra/docker/functions.Dockerfile` installs `shared/` + `functions/` + the core
dependencies + uvicorn (no `runtime/`, no `opendot/`, no numpy or speech
engines) and runs `python -m functions db migrate` (the compose migration job)
and `python -m functions api`. Without a
Docker engine, the closest faithful stand-in is the Lambda artefact (exactly
shared + functions + core dependencies) plus uvicorn and click, in an
interpreter started with `-S` so the development venv is invisible.
"""

from __future__ import annotations

import base64
import importlib.util
import secrets
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import create_database, drop_database, unique_database_name
from tests.infra.conftest import TIME_UNIT, base_python

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "supabase" / "migrations"
COMPOSE = ROOT / "infra" / "compose.yaml"
CLI = ["-m", "functions"]  # the image's ENTRYPOINT after `python`


@pytest.fixture(scope="module")
def image_path(lambda_build: tuple[Any, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    """PYTHONPATH of the simulated API image: the artefact plus uvicorn and click."""
    _, unzipped = lambda_build
    extra = tmp_path_factory.mktemp("api-image-extra")
    for name in ("uvicorn", "click"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        (extra / name).symlink_to(Path(spec.origin).parent, target_is_directory=True)
    return f"{unzipped}:{extra}"


def _opendot(
    image_path: str, *argv: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [base_python(), "-S", *CLI, *argv],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": image_path, **(env or {})},
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120 * TIME_UNIT,
        check=False,
    )


@pytest.fixture()
def fresh_database(pg_server_url: str) -> Iterator[str]:
    """An empty database, as the compose `db` service creates it (POSTGRES_DB)."""
    name = unique_database_name("img")
    try:
        yield create_database(pg_server_url, name)
    finally:
        drop_database(pg_server_url, name)


def test_compose_migration_job_runs_without_the_runtime_dependencies(
    image_path: str, fresh_database: str, tmp_path: Path
) -> None:
    """The exact command and environment of compose's `migrate` service."""
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    service = compose["services"]["migrate"]
    argv = [
        str(MIGRATIONS) if arg == "/opt/opendot/supabase/migrations" else arg
        for arg in service["command"]
    ]
    assert argv != service["command"], "the image's migrations directory moved"
    env = {
        "OPENDOT_ENV": service["environment"]["OPENDOT_ENV"],
        "POSTGRES_URI": fresh_database,
        "OPENDOT_RUNTIME_INTERNAL_SECRET": secrets.token_urlsafe(32),
        "OPENDOT_SECRETS_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    assert set(env) <= set(service["environment"]) | {"POSTGRES_URI"}
    first = _opendot(image_path, *argv, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Applied" in first.stdout
    again = _opendot(image_path, *argv, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout


@pytest.mark.parametrize("argv", [["api", "--help"], ["db", "migrate", "--help"]])
def test_api_image_commands_have_help(image_path: str, argv: list[str], tmp_path: Path) -> None:
    result = _opendot(image_path, *argv, cwd=tmp_path, env={"OPENDOT_ENV": "production"})
    assert result.returncode == 0, result.stderr
    assert "usage: python -m functions" in result.stdout


def test_api_serves_health_from_the_image_contents(
    image_path: str, database_url: str, tmp_path: Path
) -> None:
    """`opendot api` (the image's CMD) starts with core deps + uvicorn only and
    answers /health against the database; SIGTERM stops it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": image_path,
        "OPENDOT_ENV": "test",
        "PLATFORM_API_HOST": "127.0.0.1",
        "PLATFORM_API_PORT": str(port),
        "POSTGRES_URI": database_url,
        "PLATFORM_AUTH_REQUIRED": "true",
    }
    process = subprocess.Popen(
        [base_python(), "-S", *CLI, "api"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = None
        deadline = time.monotonic() + 60 * TIME_UNIT
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    body = reply.read()
                break
            except OSError:
                time.sleep(0.1)
        assert body is not None, "the API never answered /health"
        assert b'"ok":true' in body.replace(b" ", b"")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30 * TIME_UNIT)
    assert process.returncode in (0, -15), stderr[-3000:]
