"""`scripts/test-postgres.sh with`: `make test` stops the test cluster only if it started it.

The tests run their own small cluster (own port and data directory under
/var/tmp, where the `postgres` user can reach it), never the shared one; it is
created once for the module and stopped after each test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, TEST_TIME_UNIT

SCRIPT = REPO_ROOT / "scripts" / "test-postgres.sh"
pytestmark = pytest.mark.skipif(
    not Path("/usr/lib/postgresql/15/bin/initdb").exists() or shutil.which("psql") is None,
    reason="needs the postgresql-15 package (`make system-deps`)",
)


@pytest.fixture(scope="module")
def cluster_dir() -> Iterator[dict[str, str]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = Path("/var/tmp") / f"opendot-test-cluster-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "OPENDOT_TEST_PGPORT": str(port), "OPENDOT_TEST_PGDATA": str(data)}
    try:
        yield env
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture()
def cluster_env(cluster_dir: dict[str, str]) -> Iterator[dict[str, str]]:
    try:
        yield cluster_dir
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=cluster_dir, check=False)


def script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120 * TEST_TIME_UNIT,
        check=False,
    )


def running(env: dict[str, str]) -> bool:
    return script(env, "status").returncode == 0


def test_with_stops_the_cluster_it_started_and_keeps_the_exit_code(
    cluster_env: dict[str, str],
) -> None:
    assert not running(cluster_env)
    inside = script(cluster_env, "with", "sh", "-c", 'pg_isready -q -d "$0"; exit 3', "x")
    assert inside.returncode == 3, inside.stderr
    assert not running(cluster_env)


def test_with_leaves_a_cluster_that_was_already_running(cluster_env: dict[str, str]) -> None:
    assert script(cluster_env, "start").returncode == 0
    result = script(cluster_env, "with", "true")
    assert result.returncode == 0, result.stderr
    assert running(cluster_env)


def test_with_leaves_its_cluster_running_while_another_client_uses_it(
    cluster_env: dict[str, str],
) -> None:
    url = script(cluster_env, "url").stdout.strip()
    # The command starts a client that outlives it (another checkout's tests) and
    # returns once that client is connected.
    seen = "select count(*) from pg_stat_activity where query like 'select pg_sleep%'"
    command = (
        f"psql {url} -Xqc 'select pg_sleep(60)' >/dev/null 2>&1 & "
        f'until [ "$(psql {url} -XAtqc "{seen}")" = 1 ]; do sleep 0.05; done'
    )
    result = script(cluster_env, "with", "sh", "-c", command)
    assert result.returncode == 0, result.stderr
    assert "another client uses it" in result.stderr
    assert running(cluster_env)
