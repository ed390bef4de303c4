"""The simulated device against a fake runtime on 127.0.0.1 (real HTTP, real WebSocket)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from runtime.audio.synthetic import silence
from runtime.protocol.device import Abort, Hello, Listen, ListenMode, ListenState
from runtime.simulator.device import MARKS, SimulatedDevice
from runtime.simulator.errors import AuthenticationFailed, HandshakeError
from runtime.simulator.identity import DeviceIdentity, DeviceStore
from runtime.simulator.ota import Activation
from tests.simulator.conftest import TIME_UNIT
from tests.simulator.fake_runtime import CODE, TOKEN, FakeBehaviour, FakeRuntime


def tone_16k(ms: int) -> bytes:
    t = np.arange(16 * ms) / 16_000
    return (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes()


SPEECH = silence(120) + tone_16k(600)


def device_for(fake: FakeRuntime, tmp_path: Path, **options: object) -> SimulatedDevice:
    identity = DeviceIdentity(mac="02:11:22:33:44:55")
    identity.websocket = {"url": f"ws://127.0.0.1:{fake.port}/ws", "token": TOKEN}
    return SimulatedDevice(
        fake.url,
        identity,
        store=DeviceStore(tmp_path),
        poll_interval=0.01,
        hello_timeout=5 * TIME_UNIT,
        pace=0,
        **options,  # type: ignore[arg-type]
    )


async def test_provisioning_reports_the_code_polls_and_stores_the_token(
    fake: FakeRuntime, tmp_path: Path
) -> None:
    store = DeviceStore(tmp_path)
    identity = store.load_or_create()
    lines: list[str] = []
    seen: list[Activation] = []
    device = SimulatedDevice(
        fake.url, identity, store=store, poll_interval=0.01, report=lines.append
    )
    answer = await device.provision(on_activation=seen.append)
    await device.aclose()

    assert answer.activation is not None and seen == [answer.activation]
    assert seen[0].code == CODE
    assert any(" ".join(CODE) in line for line in lines)
    assert fake.recorded.activate_polls == 3  # two 202s, then 200
    headers = fake.recorded.ota_headers[0]
    assert headers["device-id"] == identity.mac
    assert headers["client-id"] == identity.client_id
    assert headers["activation-version"] == "1"
    assert headers["user-agent"] == "bread-compact-wifi/1.8.2"
    assert "authorization" not in headers and "serial-number" not in headers
    body = fake.recorded.ota_bodies[0]
    assert body["mac_address"] == identity.mac and body["application"]["version"] == "1.8.2"

    path = store.path_for(identity.mac)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["websocket"]["token"] == TOKEN
    assert store.load_or_create().mac == identity.mac  # the one stored device is reused

    # Booting again with the stored token: no new activation, Authorization sent.
    again = SimulatedDevice(fake.url, store.load_or_create(), store=store, poll_interval=0.01)
    second = await again.provision()
    await again.aclose()
    assert second.activation is None
    assert fake.recorded.ota_headers[1]["authorization"] == f"Bearer {TOKEN}"


def test_serial_number_makes_activation_version_2(tmp_path: Path) -> None:
    identity = DeviceIdentity(mac="02:00:00:00:00:01", serial_number="SN-42")
    assert identity.ota_headers()["Activation-Version"] == "2"
    assert identity.ota_headers()["Serial-Number"] == "SN-42"


@pytest.mark.parametrize("version", [1, 2, 3])
async def test_auto_turn_with_each_framing(fake: FakeRuntime, tmp_path: Path, version: int) -> None:
    async with device_for(fake, tmp_path, protocol_version=version) as device:
        turn = await device.turn(SPEECH, mode=ListenMode.AUTO)

    headers = fake.recorded.ws_headers[0]
    assert headers["protocol-version"] == str(version)
    assert headers["device-id"] == "02:11:22:33:44:55"
    assert fake.recorded.versions == [version]
    assert fake.recorded.bad_frames == []
    hello = fake.recorded.messages[0]
    assert isinstance(hello, Hello) and hello.version == version and hello.mcp
    listens = [m for m in fake.recorded.messages if isinstance(m, Listen)]
    assert [m.state for m in listens] == [ListenState.DETECT, ListenState.START]
    assert listens[1].mode == ListenMode.AUTO and listens[1].session_id == "fake-1"

    assert turn.transcript == "hello there"
    assert turn.sentences == ["This is the fake reply."]
    assert turn.emotion == "happy"
    assert turn.tts_started and turn.tts_stopped
    assert turn.audio_frames == 12 and turn.frames_after_stop == 0
    samples = np.frombuffer(turn.reply_pcm, dtype="<i2")
    assert len(samples) == 12 * 1440
    assert np.abs(samples).max() > 2000  # decodable and not silent
    timeline = turn.timeline_ms()
    assert list(timeline) == list(MARKS)
    values = [timeline[m] for m in MARKS]
    assert all(v is not None for v in values)
    assert values == sorted(values)  # type: ignore[type-var]


async def test_manual_turn_ends_with_listen_stop(fake: FakeRuntime, tmp_path: Path) -> None:
    async with device_for(fake, tmp_path) as device:
        turn = await device.turn(SPEECH, mode=ListenMode.MANUAL, wake_word=None)
    listens = [m for m in fake.recorded.messages if isinstance(m, Listen)]
    assert [(m.state, m.mode) for m in listens] == [
        (ListenState.START, ListenMode.MANUAL),
        (ListenState.STOP, None),
    ]
    assert turn.tts_stopped and turn.audio_frames == 12


@pytest.mark.parametrize("behaviour", [FakeBehaviour(reply_frames=200, frame_gap=0.02)])
async def test_abort_stops_the_reply(fake: FakeRuntime, tmp_path: Path) -> None:
    async with device_for(fake, tmp_path) as device:
        turn = await device.turn(SPEECH, abort_after=0.1 * TIME_UNIT)
    assert turn.aborted
    assert any(isinstance(m, Abort) for m in fake.recorded.messages)
    assert turn.tts_stopped
    assert 0 < turn.audio_frames < 200
    assert turn.frames_after_stop == 0


@pytest.mark.parametrize("behaviour", [FakeBehaviour(close_after_turn=True)])
async def test_close_after_turn_then_reconnect(fake: FakeRuntime, tmp_path: Path) -> None:
    async with device_for(fake, tmp_path) as device:
        first = await device.turn(SPEECH)
        assert first.closed == (1000, "turn_complete")
        assert not device.connected
        second = await device.turn(SPEECH)
    assert second.transcript == "hello there"
    assert fake.recorded.sessions == 2
    assert [t.index for t in device.turns] == [1, 2]


async def test_bad_token_is_refused_before_the_upgrade(fake: FakeRuntime, tmp_path: Path) -> None:
    device = device_for(fake, tmp_path)
    device.identity.websocket["token"] = "od_dt_wrong"
    with pytest.raises(AuthenticationFailed):
        await device.connect()
    await device.aclose()


@pytest.mark.parametrize("behaviour", [FakeBehaviour(answer_hello=False)])
async def test_missing_server_hello_times_out(fake: FakeRuntime, tmp_path: Path) -> None:
    device = device_for(fake, tmp_path)
    device.hello_timeout = 0.2 * TIME_UNIT
    with pytest.raises(HandshakeError):
        await device.connect()
    await device.aclose()
