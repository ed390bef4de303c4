"""`opendot up`: database, platform API and voice runtime with one command.

Without POSTGRES_URI an embedded PostgreSQL (pgserver) keeps its data under
`OPENDOT_DATA_DIR/pgdata` (default `./.opendot/pgdata`), so a second `up`
finds everything where the first left it. The database is migrated and the
demo seed applied (both idempotent), then `opendot api` and `opendot runtime`
start as child processes with POSTGRES_URI pointing at it.

Ports come from the settings the children read themselves (PLATFORM_API_PORT,
RUNTIME_PORT; environment or `.env`); `--api-port` and `--runtime-port`
override them. Both children are told both ports, so what is derived from a
port follows it: the public runtime URLs the API hands to browsers and Dots,
and the runtime's way to the API. "ready" is printed only once each child
answers `/health` and the runtime's offline engines are loaded. Ctrl-C or
SIGTERM stops the children first (runtime, then API) and the database last.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import ValidationError

from opendot import console
from shared.db import embedded
from shared.db.connection import parse_target, redact
from shared.db.errors import DatabaseError, MissingDatabase
from shared.db.migrate import migrate
from shared.db.seed import apply_seed
from shared.local import LocalSettings
from shared.settings import DEFAULT_API_PORT, DEFAULT_RUNTIME_PORT

STOP_GRACE_S = 10.0
READY_TIMEOUT_S = 120.0  # the runtime loads its speech models before it is ready
_PR_SET_PDEATHSIG = 1


@dataclass
class Service:
    name: str  # the `opendot` subcommand that serves it
    port: int
    port_setting: str  # the variable that moves it
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-port",
        type=int,
        default=None,
        help=f"platform API port (PLATFORM_API_PORT, {DEFAULT_API_PORT})",
    )
    parser.add_argument(
        "--runtime-port",
        type=int,
        default=None,
        help=f"voice runtime port (RUNTIME_PORT, {DEFAULT_RUNTIME_PORT})",
    )
    parser.add_argument(
        "--services",
        default="api,runtime",
        help="comma-separated services to start: api, runtime, or none (default api,runtime)",
    )
    parser.add_argument(
        "--console-port",
        type=int,
        default=console.DEFAULT_PORT,
        help=f"web console port ({console.DEFAULT_PORT}); 0 leaves the console off",
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


def port_free(port: int) -> bool:
    """Whether a server could bind `port` on every interface, as uvicorn would."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def health(service: Service) -> dict[str, Any] | None:
    """The service's /health answer, or None while it does not give a good one."""
    try:
        with urllib.request.urlopen(f"{service.url}/health", timeout=1.0) as reply:  # noqa: S310
            body = json.loads(reply.read())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) and body.get("ok") else None


def is_ready(service: Service, answer: dict[str, Any]) -> bool:
    """The runtime is ready once its offline engines are loaded (or not preloaded at all):
    the first spoken turn would otherwise pay about a second for them."""
    if service.name != "runtime":
        return True
    engines = answer.get("engines")
    return not isinstance(engines, dict) or engines.get("state") != "loading"


class Supervisor:
    """Starts the services in order and stops them in reverse order."""

    def __init__(self, services: list[Service], database_url: str) -> None:
        self.services = services
        self.database_url = database_url
        self.stop_requested = threading.Event()

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_requested.set()

    def child_env(self, api_port: int, runtime_port: int, console_port: int = 0) -> dict[str, str]:
        env = dict(os.environ)  # children read their own settings from it (and .env)
        env["POSTGRES_URI"] = self.database_url
        # Both ports to both children: each derives the other's URL from it.
        env["PLATFORM_API_PORT"] = str(api_port)
        env["RUNTIME_PORT"] = str(runtime_port)
        if console_port:
            # The console's origin joins the API's and the runtime's allow-lists.
            listed = env.get("OPENDOT_CORS_ORIGINS") or ",".join(console.DEV_ORIGINS)
            wanted = [o for o in console.origins(console_port) if o not in listed.split(",")]
            env["OPENDOT_CORS_ORIGINS"] = ",".join([listed, *wanted])
        return env

    def start(self, service: Service, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "opendot.cli", service.name]
        service.process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            command, env=env, preexec_fn=_die_with_parent
        )

    def wait_ready(self, service: Service) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        assert service.process is not None
        said_loading = False
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            if service.process.poll() is not None:
                return False
            answer = health(service)
            if answer is not None:
                if is_ready(service, answer):
                    return True
                if not said_loading:
                    _say(f"{service.name}: loading the offline speech engines")
                    said_loading = True
            self.stop_requested.wait(0.1)
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


def plan(args: argparse.Namespace, settings: LocalSettings) -> list[Service]:
    """The services to start, on the ports the flags or the settings give."""
    names = {n.strip() for n in args.services.split(",") if n.strip()} - {"none"}
    unknown = names - {"api", "runtime"}
    if unknown:
        raise SystemExit(f"opendot up: unknown service(s): {', '.join(sorted(unknown))}")
    catalogue = [
        Service("api", args.api_port or settings.api_port, "PLATFORM_API_PORT"),
        Service("runtime", args.runtime_port or settings.runtime_port, "RUNTIME_PORT"),
    ]
    return [service for service in catalogue if service.name in names]


def _prepare_database(url: str, seed: bool) -> None:
    applied = migrate(url)
    _say(f"migrations: {len(applied)} applied" if applied else "migrations: up to date")
    if seed:
        apply_seed(url)
        _say("seed: demo@opendot.local / opendot-demo with 'Demo agent'")


def _busy_ports(services: list[Service]) -> list[str]:
    return [
        f"port {s.port} for the {s.name} is in use (set {s.port_setting} or "
        f"--{s.name}-port to choose another)"
        for s in services
        if not port_free(s.port)
    ]


def _local_secrets_key(data_dir: Path) -> str:
    """A sealing key for user secrets kept beside the data (0600), made on first use,
    so `make up` can store secrets with no setup; OPENDOT_SECRETS_KEY wins when set."""
    path = data_dir / "secrets.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    return path.read_text().strip()


def _start_console(port: int, api_port: int, runtime_port: int) -> console.ConsoleServer | None:
    """Serve the built console; one line says where (or why not)."""
    if not port:
        return None
    settings = console.ConsoleSettings()
    root = console.dist_dir(settings)
    if not console.built(root):
        _say(f"console: not built ({root} has no index.html; `make up` builds it)")
        return None
    target = console.ConsoleTarget(
        api_port, runtime_port, settings.supabase_url, settings.supabase_anon_key
    )
    try:
        server = console.ConsoleServer(port, target, root)
    except OSError as exc:
        _say(f"console: port {port} is not free ({exc.strerror})")
        return None
    server.start()
    print(f"console: http://localhost:{server.port}", flush=True)
    return server


def run(args: argparse.Namespace) -> int:
    try:
        settings = LocalSettings()
    except ValidationError as exc:
        print(f"opendot up: {exc}", file=sys.stderr)
        return 2
    services = plan(args, settings)
    busy = _busy_ports(services)
    if busy:
        for problem in busy:
            print(f"opendot up: {problem}", file=sys.stderr)
        return 1
    server: embedded.EmbeddedServer | None = None
    try:
        if settings.postgres_uri:
            url = settings.postgres_uri
            _say(f"database: {redact(url)} (POSTGRES_URI)")
        else:
            server = embedded.start(args.data_dir or settings.data_dir)
            url = server.url
            _say(f"database: embedded PostgreSQL in {server.pgdata} ({url})")
        _prepare_database(url, seed=not args.no_seed)
    except DatabaseError as exc:
        advice = (
            " Create it with `opendot db migrate --create`, or unset POSTGRES_URI to use"
            " the embedded database."
            if isinstance(exc, MissingDatabase)
            else ""
        )
        print(f"opendot up: {exc}{advice}", file=sys.stderr)
        if server is not None:
            server.stop()
        return 1
    except BaseException:
        if server is not None:
            server.stop()
        raise
    return _supervise(args, settings, services, url, server)


def _supervise(
    args: argparse.Namespace,
    settings: LocalSettings,
    services: list[Service],
    url: str,
    server: embedded.EmbeddedServer | None,
) -> int:
    supervisor = Supervisor(services, url)
    previous = {
        sig: signal.signal(sig, supervisor.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    exit_code = 0
    web: console.ConsoleServer | None = None
    try:
        api_port = args.api_port or settings.api_port
        runtime_port = args.runtime_port or settings.runtime_port
        env = supervisor.child_env(api_port, runtime_port, args.console_port)
        if not env.get("OPENDOT_SECRETS_KEY"):
            env["OPENDOT_SECRETS_KEY"] = _local_secrets_key(args.data_dir or settings.data_dir)
        if args.data_dir is not None:
            # The API writes firmware files there and the runtime serves them.
            env["OPENDOT_DATA_DIR"] = str(args.data_dir.expanduser().resolve())
        for service in supervisor.services:
            supervisor.start(service, env)
            if not supervisor.wait_ready(service):
                if not supervisor.stop_requested.is_set():
                    _say(f"{service.name} did not start; stopping")
                    exit_code = 1
                break
            assert service.process is not None
            where = f"http://localhost:{service.port}"
            _say(f"{service.name}: {where} (pid {service.process.pid})")
        else:
            web = _start_console(args.console_port, api_port, runtime_port)
            _say(f"ready: {parse_target(url).describe()}; press Ctrl-C to stop")
            while not supervisor.stop_requested.wait(0.2):
                dead = supervisor.failed()
                if dead is not None:
                    assert dead.process is not None
                    _say(f"{dead.name} exited with code {dead.process.returncode}; stopping")
                    exit_code = 1
                    break
    finally:
        _say("stopping")
        if web is not None:
            web.stop()
        supervisor.stop_all()
        if server is not None:
            with contextlib.suppress(Exception):
                server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _say("stopped")
    return exit_code
