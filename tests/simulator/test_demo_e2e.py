"""`opendot up` + `opendot demo` + `opendot device simulate`, as a user runs them.

Everything is the real thing, each in its own process: `opendot up` (on a fresh
migrated test database via POSTGRES_URI, so no embedded server has to start)
supervising the platform API and the voice runtime with the offline engines
(Silero VAD, faster-whisper tiny.en, the echo LLM, Piper), then the demo and
the device simulator as command-line clients. No provider keys reach the
children, and they run in a temporary directory so no `.env` is read.
"""

from __future__ import annotations

import asyncio
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
    log = workdir / "up.log"
    env = _env(
        POSTGRES_URI=database_url,
        OPENDOT_DATA_DIR=str(workdir / ".opendot"),
        PLATFORM_API_HOST="127.0.0.1",
        RUNTIME_HOST="127.0.0.1",
        OPENDOT_LOG_LEVEL="WARNING",
    )
    command = [sys.executable, "-m", "opendot.cli", "up"]
    command += ["--api-port", str(api_port), "--runtime-port", str(runtime_port)]
    with log.open("wb") as out:
        up = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120 * T
        while "opendot up: ready" not in log.read_text(errors="replace"):
            if up.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"opendot up did not become ready:\n{log.read_text()}")
            time.sleep(0.2)
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


def test_demo_holds_a_two_turn_conversation_with_memory(platform: Platform) -> None:
    out_dir = platform.workdir / "demo-replies"
    result = _cli(
        platform,
        "demo",
        "--api-url",
        platform.api_url,
        "--runtime-url",
        platform.runtime_url,
        "--state-dir",
        str(platform.workdir / "devices"),
        "--out-dir",
        str(out_dir),
        timeout=180 * T,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "signed in as demo@opendot.local" in output
    assert re.search(r"claimed device .+ \([0-9a-f-]{36}\)", output), output
    assert "bound agent Demo agent" in output
    first, second = _turns(output.split("\ntranscript\n", 1)[1])
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
    for turn in (first, second):
        _assert_timeline(turn)
        _decoded_all(turn)
        assert turn["socket"] == "closed by the runtime (1000 turn_complete)"
    for index in (1, 2):
        pcm, rate = read_wav(out_dir / f"demo-turn-{index}.wav")
        samples = np.frombuffer(pcm, dtype="<i2")
        assert rate == 24_000 and np.abs(samples).max() > 1000


async def _claim_when_announced(
    process: asyncio.subprocess.Process, api_url: str, lines: list[str]
) -> str:
    """Read the simulator's output until it announces its code, then claim it."""
    assert process.stdout is not None
    while True:
        raw = await process.stdout.readline()
        if not raw:
            raise AssertionError("the simulator ended before announcing a code:\n" + "".join(lines))
        line = raw.decode(errors="replace")
        lines.append(line)
        match = re.search(r"activation code ((?:\d ){5}\d)", line)
        if match:
            break
    code = match[1].replace(" ", "")
    async with httpx.AsyncClient(base_url=api_url, timeout=20 * T) as api:
        login = await api.post(
            "/api/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        claim = await api.post(
            "/api/device-activations/claim", json={"code": code}, headers=headers
        )
        assert claim.status_code == 201, claim.text
        device_id = claim.json()["device"]["id"]
        bind = await api.put(
            f"/api/dot-devices/{device_id}", json={"boundAgentId": DEMO_AGENT_ID}, headers=headers
        )
        assert bind.status_code == 200, bind.text
    return code


async def test_simulated_device_holds_three_turns_over_protocol_v2(platform: Platform) -> None:
    out = platform.workdir / "simulate" / "reply.wav"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "opendot.cli",
        "device",
        "simulate",
        "--runtime-url",
        platform.runtime_url,
        "--state-dir",
        str(platform.workdir / "simulate" / "devices"),
        "--turns",
        "3",
        "--protocol-version",
        "2",
        "--say",
        "What is the weather like today?",
        "--poll-interval",
        "0.5",
        "--out",
        str(out),
        cwd=platform.workdir,
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    try:
        await asyncio.wait_for(_claim_when_announced(process, platform.api_url, lines), 60 * T)
        assert process.stdout is not None
        rest = await asyncio.wait_for(process.stdout.read(), 180 * T)
        code = await asyncio.wait_for(process.wait(), 10 * T)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = "".join(lines) + rest.decode(errors="replace")
    assert code == 0, output
    assert "connected (protocol v2" in output
    turns = _turns(output)
    assert len(turns) == 3, output
    for index, turn in enumerate(turns, start=1):
        assert "weather" in turn["you said"].lower(), output
        assert turn["reply"].startswith("(echo) You said: "), output
        _assert_timeline(turn)
        _decoded_all(turn)
        pcm, rate = read_wav(out.with_name(f"reply-{index}.wav"))
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        # Audible: loud peaks and a speech-like level, not silence or clicks.
        assert rate == 24_000 and samples.size > rate // 2
        assert np.abs(samples).max() > 1000 and np.sqrt(np.mean(samples**2)) > 100
