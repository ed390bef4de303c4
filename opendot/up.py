"""`opendot up`: database, platform API and voice runtime with one command.

Without POSTGRES_URI an embedded PostgreSQL (pgserver) keeps its data under
`OPENDOT_DATA_DIR/pgdata` (default `./.opendot/pgdata`), so a second `up`
finds everything where the first left it. The database is migrated and the
demo seed applied (both idempotent), then `opendot api` and `opendot runtime`
start as child processes with POSTGRES_URI pointing at it, if their modules
are part of this build. Ctrl-C or SIGTERM stops the children first (runtime,
then API) and the database last.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from shared.db import embedded
from shared.db.connection import parse_target, redact
from shared.db.errors import DatabaseError
from shared.db.migrate import migrate
from shared.db.seed import apply_seed
from shared.db.settings import DbSettings

STOP_GRACE_S = 10.0
READY_TIMEOUT_S = 120.0  # the runtime may load speech models before it listens
_PR_SET_PDEATHSIG = 1


@dataclass
class Service:
    name: str
    module: str
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def available(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-port", type=int, default=8788, help="platform API port (8788)")
    parser.add_argument("--runtime-port", type=int, default=8787, help="voice runtime port (8787)")
    parser.add_argument(
        "--services",
        default="api,runtime",
        help="comma-separated services to start: api, runtime, or none (default api,runtime)",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="overrides OPENDOT_DATA_DIR")
    parser.add_argument("--no-seed", action="store_true", help="do not apply supabase/seed.sql")


def _say(message: str) -> None:
    print(f"opendot up: {message}", flush=True)


def _die_with_parent() -> None:
    """Children get SIGTERM if `up` itself is killed without a chance to clean up."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: best effort only


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Supervisor:
    """Starts the services in order and stops them in reverse order."""

    def __init__(self, services: list[Service], database_url: str) -> None:
        self.services = services
        self.database_url = database_url
        self.stop_requested = threading.Event()

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_requested.set()

    def child_env(self, api_port: int) -> dict[str, str]:
        env = dict(os.environ)  # children read their own settings from it
        env["POSTGRES_URI"] = self.database_url
        env.setdefault("PLATFORM_API_INTERNAL_URL", f"http://127.0.0.1:{api_port}/api")
        return env

    def start(self, service: Service, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "opendot.cli", service.name, "--port", str(service.port)]
        service.process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            command, env=env, preexec_fn=_die_with_parent
        )

    def wait_ready(self, service: Service) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        assert service.process is not None
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            if service.process.poll() is not None:
                return False
            if _port_open(service.port):
                return True
            time.sleep(0.1)
        return False

    def failed(self) -> Service | None:
        for service in self.services:
            if service.process is not None and service.process.poll() is not None:
                return service
        return None

    def stop_all(self) -> None:
        for service in reversed(self.services):
            process = service.process
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _say(f"{service.name} did not stop within {STOP_GRACE_S:g} s; killing it")
                process.kill()
                process.wait()


def _selected(args: argparse.Namespace) -> list[Service]:
    names = {n.strip() for n in args.services.split(",") if n.strip()} - {"none"}
    unknown = names - {"api", "runtime"}
    if unknown:
        raise SystemExit(f"opendot up: unknown service(s): {', '.join(sorted(unknown))}")
    catalogue = [
        Service("api", "functions.server", args.api_port),
        Service("runtime", "runtime.server", args.runtime_port),
    ]
    chosen = []
    for service in catalogue:
        if service.name not in names:
            continue
        if not service.available:
            _say(f"{service.name}: not part of this build yet ({service.module}); skipped")
            continue
        chosen.append(service)
    return chosen


def _prepare_database(url: str, seed: bool) -> None:
    applied = migrate(url)
    _say(f"migrations: {len(applied)} applied" if applied else "migrations: up to date")
    if seed:
        apply_seed(url)
        _say("seed: demo@opendot.local / opendot-demo with 'Demo agent'")


def run(args: argparse.Namespace) -> int:
    settings = DbSettings()
    server: embedded.EmbeddedServer | None = None
    try:
        if settings.postgres_uri:
            url = settings.postgres_uri
            _say(f"database: {redact(url)} (POSTGRES_URI)")
        else:
            data_dir = args.data_dir or settings.data_dir
            server = embedded.start(data_dir)
            url = server.url
            _say(f"database: embedded PostgreSQL in {server.pgdata} ({url})")
        _prepare_database(url, seed=not args.no_seed)
    except DatabaseError as exc:
        print(f"opendot up: {exc}", file=sys.stderr)
        if server is not None:
            server.stop()
        return 1
    except BaseException:
        if server is not None:
            server.stop()
        raise

    supervisor = Supervisor(_selected(args), url)
    previous = {
        sig: signal.signal(sig, supervisor.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    exit_code = 0
    try:
        env = supervisor.child_env(args.api_port)
        for service in supervisor.services:
            supervisor.start(service, env)
            if not supervisor.wait_ready(service):
                if not supervisor.stop_requested.is_set():
                    _say(f"{service.name} did not start; stopping")
                    exit_code = 1
                break
            assert service.process is not None
            _say(f"{service.name}: http://localhost:{service.port} (pid {service.process.pid})")
        else:
            where = parse_target(url).describe()
            _say(f"ready: {where}; press Ctrl-C to stop")
            while not supervisor.stop_requested.wait(0.2):
                dead = supervisor.failed()
                if dead is not None:
                    assert dead.process is not None
                    _say(f"{dead.name} exited with code {dead.process.returncode}; stopping")
                    exit_code = 1
                    break
    finally:
        _say("stopping")
        supervisor.stop_all()
        if server is not None:
            server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _say("stopped")
    return exit_code
