"""`opendot db ...` as a user runs it: a subprocess, its exit code and its one sentence."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from shared.db.commands.reset import check_local
from shared.db.errors import UnsafeTargetError
from tests.conftest import TEST_TIME_UNIT


def opendot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opendot.cli", *args],
        capture_output=True,
        text=True,
        timeout=60 * TEST_TIME_UNIT,
        check=False,
    )


def one_sentence(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[int]:
    """A loopback server that answers everything like a web server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    server.close()


def test_unreachable_url_fails_with_one_sentence() -> None:
    result = opendot(
        "db", "migrate", "--database-url", f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    )
    assert result.returncode != 0
    assert "Nothing is listening for PostgreSQL" in one_sentence(result.stderr)


def test_non_postgres_server_fails_with_one_sentence(http_server: int) -> None:
    result = opendot(
        "db", "migrate", "--database-url", f"postgresql://postgres@127.0.0.1:{http_server}/x"
    )
    assert result.returncode != 0
    assert "is not PostgreSQL" in one_sentence(result.stderr)


def test_non_postgres_scheme_fails_with_one_sentence() -> None:
    result = opendot("db", "status", "--database-url", "https://example.invalid/db")
    assert result.returncode != 0
    assert "not a PostgreSQL URL" in one_sentence(result.stderr)


def test_missing_database_suggests_create(pg_server_url: str) -> None:
    url = pg_server_url.rsplit("/", 1)[0] + "/opendot_t_does_not_exist"
    result = opendot("db", "migrate", "--database-url", url)
    assert result.returncode != 0
    assert "--create" in one_sentence(result.stderr)


def test_only_the_command_with_create_offers_it(pg_server_url: str) -> None:
    url = pg_server_url.rsplit("/", 1)[0] + "/opendot_t_does_not_exist"
    status = opendot("db", "status", "--database-url", url)
    assert status.returncode != 0
    assert "does not exist" in one_sentence(status.stderr)
    assert "--create" not in status.stderr  # `db status` has no such flag


def test_reset_refuses_a_remote_url() -> None:
    # Nothing listens there and nothing is contacted: the refusal comes first.
    result = opendot(
        "db", "reset", "--yes", "--database-url", "postgresql://postgres@db.example.com:5432/prod"
    )
    assert result.returncode != 0
    assert "Refusing to reset" in one_sentence(result.stderr)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@10.0.0.5/db",
        "postgresql://u@aws-0-eu.pooler.supabase.com:6543/postgres",
        "postgresql://u@localhost.evil.com/db",
        "postgresql://u@127.0.0.1/template1",
    ],
)
def test_reset_target_check_rejects(url: str) -> None:
    with pytest.raises(UnsafeTargetError):
        check_local(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@localhost/db",
        "postgresql://u@127.0.0.1:54330/db",
        "postgresql://u@[::1]:5432/db",
        "postgresql://postgres:@/postgres?host=/tmp/pgdata",
    ],
)
def test_reset_target_check_accepts_local(url: str) -> None:
    check_local(url)


def test_reset_recreates_migrates_and_seeds(pg_server_url: str) -> None:
    from tests.conftest import create_database, drop_database, unique_database_name

    name = unique_database_name("db")
    url = create_database(pg_server_url, name)
    try:
        first = opendot("db", "reset", "--yes", "--no-seed", "--database-url", url)
        assert first.returncode == 0, first.stderr
        assert "Reset the database" in first.stdout
        status = opendot("db", "status", "--database-url", url)
        assert status.returncode == 0 and "0 pending" in status.stdout
    finally:
        drop_database(pg_server_url, name)
