"""`opendot up` + `opendot demo` + `opendot device simulate`, as the README runs them.

Everything is the real thing, each in its own process: `opendot up` (on a fresh
migrated test database via POSTGRES_URI, so no embedded server has to start)
supervising the platform API and the voice runtime with the offline engines
(Silero VAD, faster-whisper tiny.en, the echo LLM, Piper), then the demo and
the device simulator as command-line clients, with the README's arguments and
nothing more. The ports are moved in the working directory's `.env`, the way a
newcomer moves them, so every default has to follow the same settings. No
provider keys reach the children.
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
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from runtime.audio.containers import read_wav
from tests.conftest import TEST_TIME_UNIT

pytestmark = pytest.mark.slow  # three processes, real speech models: about a minute

T = TEST_TIME_UNIT
DEMO_EMAIL = "demo@opendot.local"
DEMO_PASSWORD = "opendot-demo"
DEMO_AGENT_ID = "00000000-0000-4000-8000-0000000000a1"
# Settings a developer's shell may hold that would change what the children do.
_FOREIGN_ENV = ("OPENAI_", "DEEPGRAM_", "AZURE_", "OPENDOT_", "PLATFORM_", "RUNTIME_", "SUPABASE_")
_KEEP_ENV = ("OPENDOT_TEST_TIME_UNIT",)
TIMELINE = re.compile(
    r"speech end 0 ms -> stt \+(\d+) ms -> first sentence_start \+(\d+) ms"
    r" -> first audio \+(\d+) ms -> tts stop \+(\d+) ms"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k in _KEEP_ENV or (not k.startswith(_FOREIGN_ENV) and k != "POSTGRES_URI")
    }
    env.update(extra)
    return env


@dataclass
class Platform:
    api_url: str
    runtime_url: str
    workdir: Path
    log: Path


@pytest.fixture(scope="module")
def platform(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp("up")
    api_port, runtime_port = _free_port(), _free_port()
    (workdir / ".env").write_text(
        f"PLATFORM_API_PORT={api_port}\nRUNTIME_PORT={runtime_port}\n", encoding="utf-8"
    )
    log = workdir / "up.log"
    env = _env(
        POSTGRES_URI=database_url,
        PLATFORM_API_HOST="127.0.0.1",
        RUNTIME_HOST="127.0.0.1",
        OPENDOT_LOG_LEVEL="WARNING",
    )
    command = [sys.executable, "-m", "opendot.cli", "up"]
    with log.open("wb") as out:
        up = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120 * T
        while "opendot up: ready" not in log.read_text(errors="replace"):
            if up.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"opendot up did not become ready:\n{log.read_text()}")
            time.sleep(0.2)
        # "ready" means both answer /health and the first turn has no engine to load.
        health = httpx.get(f"http://127.0.0.1:{runtime_port}/health", timeout=5 * T).json()
        assert health["engines"]["state"] == "ready", health
        assert httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=5 * T).json()["ok"]
        yield Platform(
            f"http://127.0.0.1:{api_port}",
            f"http://127.0.0.1:{runtime_port}",
            workdir,
            log,
        )
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops it
        try:
            code = up.wait(timeout=40 * T)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
            pytest.fail(f"opendot up did not stop on Ctrl-C:\n{log.read_text()}")
    text = log.read_text(errors="replace")
    assert code == 0, text
    # Children stopped in reverse order, then `up` itself.
    assert text.rstrip().endswith("opendot up: stopped"), text


def _cli(platform: Platform, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opendot.cli", *args],
        cwd=platform.workdir,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _turns(output: str) -> list[dict[str, str]]:
    """The `turn N (mode):` blocks of the simulator's output, as field -> value."""
    turns: list[dict[str, str]] = []
    for line in output.splitlines():
        if re.match(r"turn \d+ \(", line):
            turns.append({})
        elif turns and line.startswith("  ") and ":" in line:
            key, value = line.strip().split(":", 1)
            turns[-1][key.strip()] = value.strip().strip('"')
    return turns


def _assert_timeline(turn: dict[str, str]) -> None:
    match = TIMELINE.fullmatch(turn["timeline"])
    assert match, turn["timeline"]
    stt, sentence, audio, stop = (int(g) for g in match.groups())
    assert stt <= sentence <= audio <= stop


def _decoded_all(turn: dict[str, str]) -> None:
    """`audio : N Opus frames, S s decoded`: every 60 ms packet decoded to 60 ms of PCM."""
    match = re.fullmatch(r"(\d+) Opus frames, ([\d.]+) s decoded", turn["audio"])
    assert match, turn["audio"]
    frames, seconds = int(match[1]), float(match[2])
    assert frames > 0
    assert seconds == pytest.approx(frames * 0.06, abs=0.011)


@pytest.fixture(scope="module")
def demo(platform: Platform) -> str:
    """`opendot demo` as the README runs it (plus somewhere to keep the replies)."""
    result = _cli(platform, "demo", "--out-dir", "demo-replies", timeout=180 * T)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_demo_holds_a_conversation_with_memory_and_one_tool_turn(
    platform: Platform, demo: str
) -> None:
    output = demo
    assert "signed in as demo@opendot.local" in output
    assert re.search(r"claimed device .+ \([0-9a-f-]{36}\)", output), output
    assert "bound agent Demo agent" in output
    first, second, third = _turns(output.split("\ntranscript\n", 1)[1])
    # What was said (espeak-ng into Whisper tiny.en: spelling may be American).
    heard_first, heard_second = first["you said"].lower(), second["you said"].lower()
    assert "green" in heard_first and "colo" in heard_first, output
    assert "colo" in heard_second and "green" not in heard_second, output
    # The echo LLM, labelled, repeats the question; the second reply also
    # repeats the first question, which only the runtime's memory can supply.
    assert first["reply"].startswith("(echo) You said: ") and "Before that" not in first["reply"]
    assert second["reply"].startswith("(echo) You said: ")
    recalled = second["reply"].split("Before that you said: ", 1)[1].lower()
    assert "green" in recalled, output
    assert "memory   : turn 2's reply recalls 'green' from turn 1" in output
    # The tool turn: the labelled echo model calls the Dot's own volume tool over MCP.
    assert "volume" in third["you said"].lower() and "30" in third["you said"], output
    assert third["reply"].startswith("(echo tool demo) I asked the Dot to set the volume to 30")
    assert (
        "tool     : the model called the Dot's self.audio_speaker.set_volume {'volume': 30}; "
        "the Dot's volume is now 30" in output
    )
    for turn in (first, second, third):
        _assert_timeline(turn)
        _decoded_all(turn)
        assert turn["socket"] == "closed by the runtime (1000 turn_complete)"
    for index in (1, 2, 3):
        pcm, rate = read_wav(platform.workdir / "demo-replies" / f"demo-turn-{index}.wav")
        samples = np.frombuffer(pcm, dtype="<i2")
        assert rate == 24_000 and np.abs(samples).max() > 1000


def test_browser_voice_urls_follow_the_runtime_port(platform: Platform) -> None:
    """The API hands browsers the runtime's URL on the port `.env` moved it to."""
    with httpx.Client(base_url=platform.api_url, timeout=20 * T) as api:
        login = api.post("/api/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        minted = api.post(
            "/api/runtime/voice-sessions", json={"agentId": DEMO_AGENT_ID}, headers=headers
        )
    assert minted.status_code == 201, minted.text
    runtime_port = platform.runtime_url.rsplit(":", 1)[1]
    assert minted.json()["voiceSession"]["url"].startswith(f"ws://localhost:{runtime_port}/voice?")


def test_readme_simulate_line_talks_through_the_demo_device(platform: Platform, demo: str) -> None:
    """`opendot device simulate --turns 3 --protocol-version 2 --say "what time is it"`,
    exactly as the README shows it after `opendot demo`: no claim to wait for."""
    result = _cli(
        platform,
        "device",
        "simulate",
        "--turns",
        "3",
        "--protocol-version",
        "2",
        "--say",
        "what time is it",
        timeout=180 * T,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "activation code" not in output, output
    assert "connected (protocol v2" in output
    turns = _turns(output)
    assert len(turns) == 3, output
    for turn in turns:
        assert "time" in turn["you said"].lower(), output
        assert turn["reply"].startswith("(echo) You said: "), output
        _assert_timeline(turn)
        _decoded_all(turn)


def test_demo_realtime_speaks_through_the_offline_echo_provider(
    platform: Platform, demo: str
) -> None:
    """No key: the demo's speech-to-speech agent runs on the in-process echo provider,
    through the same Realtime bridge, events and records as OpenAI would."""
    result = _cli(platform, "demo", "--realtime", timeout=240 * T)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "speech-to-speech through the echo Realtime provider" in output
    assert "bound agent Demo realtime agent" in output
    first, second, volume = _turns(output.split("\ntranscript\n", 1)[1])
    assert "green" in first["you said"].lower(), output
    assert first["reply"].startswith("(echo) You said: ")
    recalled = second["reply"].split("Before that you said: ", 1)[1].lower()
    assert "green" in recalled, output  # the memory of the first socket, replayed as items
    # The bridge offers the Dot's own tools to the provider and runs its function call.
    assert volume["reply"].startswith("(echo tool demo) I asked the Dot to set the volume to 30")
    assert (
        "tool     : the model called the Dot's self.audio_speaker.set_volume {'volume': 30}; "
        "the Dot's volume is now 30" in output
    )
    for turn in (first, second, volume):
        _decoded_all(turn)
        assert turn["socket"] == "closed by the runtime (1000 turn_complete)"


def test_demo_says_why_sign_in_failed(platform: Platform) -> None:
    wrong = _cli(platform, "demo", "--password", "not-the-password", timeout=60 * T)
    assert wrong.returncode == 1
    assert "(401)" in wrong.stdout
    assert "refused the password of demo@opendot.local" in wrong.stdout
    assert "Is `opendot up`" not in wrong.stdout  # it is running: it said no
