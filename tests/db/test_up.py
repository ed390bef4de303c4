"""`opendot up` as a user runs it: embedded database, clean Ctrl-C, data kept."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import TEST_TIME_UNIT

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="the embedded server is exercised on Linux only"
)


class Up:
    """One `opendot up` child with its output collected line by line."""

    def __init__(self, workdir: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in {"POSTGRES_URI", "OPENDOT_DATA_DIR"}}
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "opendot.cli", "up", "--services", "none", *args],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern!r}; output so far: {self.seen}")

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=60 * TEST_TIME_UNIT)
        self.pump.join(timeout=10 * TEST_TIME_UNIT)
        assert self.process.stdout is not None
        self.process.stdout.close()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code


async def _query(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url, timeout=10 * TEST_TIME_UNIT)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_up_starts_embedded_database_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    first = Up(tmp_path)
    try:
        started = r"database: embedded PostgreSQL in .* \((\S+)\)"
        url = first.wait_for(started, 60 * TEST_TIME_UNIT)[1]
        first.wait_for(r"migrations: \d+ applied", 60 * TEST_TIME_UNIT)
        first.wait_for(r"ready", 60 * TEST_TIME_UNIT)
        demo = asyncio.run(
            _query(
                url, "select display_name from public.app_users where email = 'demo@opendot.local'"
            )
        )
        assert demo == "Demo"
        asyncio.run(
            _query(
                url,
                "insert into public.app_users (auth_provider, auth_subject, email)"
                " values ('local', 'kept@example.org', 'kept@example.org') returning 1",
            )
        )
    finally:
        code = first.interrupt()
    assert code == 0, first.seen
    assert first.seen[-1].endswith("stopped")
    with pytest.raises((OSError, asyncpg.PostgresError)):
        asyncio.run(_query(url, "select 1"))  # the database stopped with it

    second = Up(tmp_path)
    try:
        second.wait_for(r"migrations: up to date", 60 * TEST_TIME_UNIT)
        second.wait_for(r"ready", 60 * TEST_TIME_UNIT)
        kept = asyncio.run(
            _query(url, "select count(*) from public.app_users where email = 'kept@example.org'")
        )
        assert kept == 1
    finally:
        code = second.interrupt()
    assert code == 0, second.seen


def test_up_reports_an_unusable_postgres_uri(tmp_path: Path) -> None:
    env = {**os.environ, "POSTGRES_URI": "mysql://root@127.0.0.1/db"}
    result = subprocess.run(
        [sys.executable, "-m", "opendot.cli", "up", "--services", "none"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60 * TEST_TIME_UNIT,
        check=False,
    )
    assert result.returncode == 1
    assert "not a PostgreSQL URL" in result.stderr


def _up_once(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "RUNTIME_"))}
    return subprocess.run(
        [sys.executable, "-m", "opendot.cli", "up", *args],
        cwd=tmp_path,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60 * TEST_TIME_UNIT,
        check=False,
    )


def test_up_on_a_missing_database_says_how_to_create_it(tmp_path: Path, pg_server_url: str) -> None:
    missing = pg_server_url.rsplit("/", 1)[0] + "/opendot_t_up_does_not_exist"
    result = _up_once(tmp_path, "--services", "none", POSTGRES_URI=missing)
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert "use --create" not in result.stderr  # `up` has no such flag
    assert "opendot db migrate --create" in result.stderr


@pytest.fixture()
def occupied_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("source", ["environment", "dotenv", "flag"])
def test_up_refuses_a_busy_port_from_any_source(
    tmp_path: Path, database_url: str, occupied_port: int, source: str
) -> None:
    """RUNTIME_PORT from the environment or `.env`, or --runtime-port, is the port
    `up` uses: a busy one is named with the setting that moves it, before anything starts."""
    args: list[str] = []
    env = {"POSTGRES_URI": database_url}
    if source == "environment":
        env["RUNTIME_PORT"] = str(occupied_port)
    elif source == "dotenv":
        (tmp_path / ".env").write_text(f"RUNTIME_PORT={occupied_port}\n", encoding="utf-8")
    else:
        (tmp_path / ".env").write_text("RUNTIME_PORT=1\n", encoding="utf-8")  # overridden
        args = ["--runtime-port", str(occupied_port)]
    result = _up_once(tmp_path, *args, **env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port {occupied_port} for the runtime is in use" in result.stderr
    assert "RUNTIME_PORT" in result.stderr
    assert "ready" not in result.stdout
