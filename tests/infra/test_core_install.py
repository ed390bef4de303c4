"""`opendot` on an install with only the core dependencies (no runtime extras).

That is the Lambda or CI deployer's install: `pip install opendot` without
`[runtime]`, so no uvicorn, numpy or speech engines, yet every source package
present. Stand-in: an interpreter started with `-S` (the development venv is
invisible) whose PYTHONPATH is the Lambda artefact (exactly the core
dependencies, as pip resolves them) followed by this checkout (for `opendot/`
and `runtime/`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import create_database, drop_database, unique_database_name
from tests.infra.conftest import TIME_UNIT, base_python

ROOT = Path(__file__).resolve().parents[2]
CLI = ["-m", "opendot"]
EXTRAS_ONLY = ("uvicorn", "numpy", "websockets", "soxr", "onnxruntime", "faster_whisper")


@pytest.fixture(scope="module")
def core_path(lambda_build: tuple[Any, Path]) -> str:
    _, unzipped = lambda_build
    return f"{unzipped}:{ROOT}"


def _opendot(core_path: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [base_python(), "-S", *CLI, *argv],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": core_path, "OPENDOT_ENV": "development"},
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120 * TIME_UNIT,
        check=False,
    )


@pytest.fixture()
def empty_database(pg_server_url: str) -> Iterator[str]:
    name = unique_database_name("core")
    try:
        yield create_database(pg_server_url, name)
    finally:
        drop_database(pg_server_url, name)


def test_the_stand_in_really_lacks_the_extras(core_path: str, tmp_path: Path) -> None:
    probe = f"import importlib.util as u; print([m for m in {EXTRAS_ONLY!r} if u.find_spec(m)])"
    result = subprocess.run(
        [base_python(), "-S", "-c", probe],
        env={"PYTHONPATH": core_path},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert result.stdout.strip() == "[]"
    assert (ROOT / "runtime" / "server.py").is_file()  # ... while our sources are all there


def test_db_migrate_runs_on_the_core_dependencies(
    core_path: str, empty_database: str, tmp_path: Path
) -> None:
    first = _opendot(
        core_path,
        "db",
        "migrate",
        "--database-url",
        empty_database,
        "--migrations-dir",
        str(ROOT / "supabase" / "migrations"),
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    assert "Applied" in first.stdout
    status = _opendot(core_path, "db", "status", "--database-url", empty_database, cwd=ROOT)
    assert status.returncode == 0, status.stderr


def test_help_lists_every_command_without_their_dependencies(
    core_path: str, tmp_path: Path
) -> None:
    result = _opendot(core_path, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("db", "up", "api", "runtime", "device", "demo", "bench"):
        assert f"    {command} " in result.stdout, command


def test_a_command_that_needs_an_extra_says_which(core_path: str, tmp_path: Path) -> None:
    result = _opendot(core_path, "runtime", "--help", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "'uvicorn'" in result.stderr
    assert "pip install 'opendot[runtime]'" in result.stderr
