"""`opendot device simulate` end to end against the fake runtime."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from opendot.cli import main
from runtime.audio.containers import read_wav
from runtime.simulator.cli import out_path
from tests.simulator.fake_runtime import CODE, FakeRuntime


async def test_simulate_provisions_talks_and_writes_audio(
    fake: FakeRuntime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "device",
        "simulate",
        "--runtime-url",
        fake.url,
        "--state-dir",
        str(tmp_path / "devices"),
        "--say",
        "Hello there, how are you?",
        "--turns",
        "2",
        "--protocol-version",
        "2",
        "--pace",
        "0",
        "--poll-interval",
        "0.01",
        "--out",
        str(tmp_path / "reply.wav"),
        "--code-wav",
        str(tmp_path / "code.wav"),
    ]
    code = await asyncio.to_thread(main, argv)
    output = capsys.readouterr().out
    assert code == 0, output
    assert f"activation code {' '.join(CODE)}" in output
    assert output.count('you said : "hello there"') == 2
    assert "timeline : speech end 0 ms -> stt +" in output
    for index in (1, 2):
        pcm, rate = read_wav(tmp_path / f"reply-{index}.wav")
        assert rate == 24_000
        assert np.abs(np.frombuffer(pcm, dtype="<i2")).max() > 2000
    code_pcm, _ = read_wav(tmp_path / "code.wav")
    assert len(code_pcm) > 16_000  # about a second of speech at least
    stored = list((tmp_path / "devices").glob("*.json"))
    assert len(stored) == 1
    assert json.loads(stored[0].read_text())["websocket"]["token"].startswith("od_dt_")
    assert fake.recorded.versions == [2]


async def test_simulate_reports_errors_without_a_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "device",
        "simulate",
        "--runtime-url",
        "http://127.0.0.1:9",
        "--state-dir",
        str(tmp_path),
    ]
    argv += ["--wav", str(tmp_path / "missing.wav")]
    assert await asyncio.to_thread(main, argv) == 1
    assert "cannot read" in capsys.readouterr().out


def test_out_path() -> None:
    assert out_path(Path("a/reply.wav"), 1, 1) == Path("a/reply.wav")
    assert out_path(Path("a/reply.wav"), 2, 3) == Path("a/reply-2.wav")
    assert out_path(Path("a/reply"), 2, 3) == Path("a/reply-2.wav")


def test_demo_without_an_api_asks_whether_up_is_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLATFORM_API_PORT", str(port))  # the demo's default follows it
    assert main(["demo"]) == 1
    out = capsys.readouterr().out
    assert f"cannot reach the platform API at http://127.0.0.1:{port}/api" in out
    assert "Is `opendot up` (or `make up`) running?" in out
