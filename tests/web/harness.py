"""A real `opendot up` stack and Debian's Chromium, for the console's browser tests.

One stack per test module (started with the built console), one Chromium per
module launched from /usr/bin/chromium through Playwright (no browser
download), its fake microphone fed a WAV that espeak-ng speaks. Every page's
console errors and uncaught exceptions are collected and must stay empty.
Screenshots go to `<repo>/.test-output/console/` (or OPENDOT_TEST_OUTPUT).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from opendot import console
from runtime.simulator.audio import synthesize_16k, write_wav
from tests.conftest import REPO_ROOT, TEST_TIME_UNIT

T = TEST_TIME_UNIT
CHROMIUM = "/usr/bin/chromium"
DEMO_EMAIL = "demo@opendot.local"
DEMO_PASSWORD = "opendot-demo"
SPOKEN = "What is the weather like today?"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
_FOREIGN_ENV = ("OPENAI_", "DEEPGRAM_", "AZURE_", "OPENDOT_", "PLATFORM_", "RUNTIME_", "SUPABASE_")
_KEEP_ENV = ("OPENDOT_TEST_TIME_UNIT",)


def output_dir() -> Path:
    path = Path(os.environ.get("OPENDOT_TEST_OUTPUT") or REPO_ROOT / ".test-output") / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k in _KEEP_ENV or (not k.startswith(_FOREIGN_ENV) and k != "POSTGRES_URI")
    }
    env.update(extra)
    return env


def ensure_built() -> None:
    """The browser tests need web/dist; `make test` builds it first."""
    if console.built():
        return
    if subprocess.run(["which", "npm"], capture_output=True).returncode != 0:
        pytest.fail("web/dist is not built and npm is missing: run `make console`", pytrace=False)
    web = REPO_ROOT / "web"
    if not (web / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=web, check=True)
    subprocess.run(["npm", "run", "build"], cwd=web, check=True, capture_output=True)


@dataclass
class Stack:
    console_url: str
    api_url: str
    runtime_url: str
    workdir: Path
    log: Path

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "opendot.cli", *args]


@contextmanager
def opendot_up(database_url: str, workdir: Path, **env: str) -> Iterator[Stack]:
    ensure_built()
    api_port, runtime_port, console_port = free_port(), free_port(), free_port()
    log = workdir / "up.log"
    environment = clean_env(
        POSTGRES_URI=database_url,
        OPENDOT_DATA_DIR=str(workdir / ".opendot"),
        PLATFORM_API_HOST="127.0.0.1",
        RUNTIME_HOST="127.0.0.1",
        OPENDOT_LOG_LEVEL="WARNING",
        **env,
    )
    command = [sys.executable, "-m", "opendot.cli", "up"]
    command += ["--api-port", str(api_port), "--runtime-port", str(runtime_port)]
    command += ["--console-port", str(console_port)]
    with log.open("wb") as out:
        up = subprocess.Popen(
            command, cwd=workdir, env=environment, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 120 * T
        while "opendot up: ready" not in log.read_text(errors="replace"):
            if up.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"opendot up did not become ready:\n{log.read_text()}")
            time.sleep(0.2)
        text = log.read_text(errors="replace")
        found = re.search(r"^console: (http://\S+)$", text, re.MULTILINE)
        assert found, text
        assert found[1] == f"http://localhost:{console_port}"
        yield Stack(
            found[1],
            f"http://127.0.0.1:{api_port}",
            f"http://127.0.0.1:{runtime_port}",
            workdir,
            log,
        )
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=40 * T)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()


def spoken_wav(path: Path, text: str = SPOKEN) -> Path:
    """`text` in espeak-ng's voice with silence after it, as Chromium's fake mic."""
    pcm = synthesize_16k(text)
    silence = b"\x00\x00" * 16_000 * 3
    return write_wav(path, b"\x00\x00" * 8_000 + pcm + silence, 16_000)


# Chromium logs every 4xx answer to fetch() as "Failed to load resource"; the flows
# provoke some on purpose (a wrong password, a refused field) and show the API's
# sentence for them. Everything else logged as an error fails the test.
_EXPECTED_HTTP = re.compile(
    r"^Failed to load resource: the server responded with a status of 4\d\d "
)


@dataclass
class Watch:
    """What a page said on its console, and what its WebSockets carried."""

    errors: list[str] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)
    sent: list[Any] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("websocket", self._socket)

    def _console(self, message: Any) -> None:
        if message.type == "error" and not _EXPECTED_HTTP.match(message.text):
            self.errors.append(f"console.{message.type}: {message.text}")

    def _socket(self, ws: Any) -> None:
        ws.on(
            "framereceived",
            lambda payload: self.frames.append(payload) if isinstance(payload, str) else None,
        )
        ws.on("framesent", lambda payload: self.sent.append(payload))


def screenshot(target: Any, name: str) -> Path:
    """The whole page, or one part of it (a locator: a section of a long page)."""
    path = output_dir() / f"{name}.png"
    if hasattr(target, "goto"):
        target.screenshot(path=str(path), full_page=True)
    else:
        target.screenshot(path=str(path))
    return path
