"""`opendot bench runtime`, the headline part: the runtime as shipped, real provider sockets.

Method (issue #13). `python -m runtime runtime` runs as a deployment runs it,
pinned to CPU 0, configured only through its environment: Deepgram live STT
with Deepgram's own endpointing, OpenAI Responses, Deepgram TTS, all pointed at
`opendot.bench.provider_fakes` (zero added delay: WebSocket live STT, SSE, HTTP
streaming PCM, and the platform's internal API), which run in their own process
pinned to CPU 1 beside this load generator. Devices speak the xiaozhi protocol:
`listen start` (manual), 60 ms Opus frames in real time, `listen stop`.

(a) latency, unloaded: `listen stop` -> first downlink Opus frame (p50/p90/p99)
    and `listen stop` -> the `stt` message (p50), over many turns of one device.
(b) capacity: N devices (50, 100, 200, 300, 400, ...) each listening with its own
    live STT socket and streaming in real time, while a probe device takes turns;
    a level holds when the probe's p50 and p99 stay <= 1.25x their unloaded values
    and no device was dropped (every socket open, every STT socket open).
(c) memory: runtime RSS per idle device (hello done) and per streaming device
    (listening, its STT socket open, audio flowing); the kernel's TCP buffer
    memory (/proc/net/sockstat) is reported beside it, since RSS does not hold it.
(d) provider audio-seconds per turn: the audio the STT fake received per turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from opendot.bench.provider_fakes import bench_agent

SERVER_CPU = "0"
CLIENT_CPU = "1"
LEVELS = (50, 100, 200, 300, 400, 500, 600)
QUICK_LEVELS = (20, 50)
RATIO_LIMIT = 1.25
SPEECH_FRAMES = 12  # 0.72 s per probe utterance: under the fake's 1 s interim interval
SECRET = "bench-secret-not-a-placeholder"  # noqa: S105 - the fakes accept any


def _progress(stage: str) -> None:
    print(f"bench runtime (real sockets): {stage} ...", file=sys.stderr, flush=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _tcp_mem_kib() -> int:
    """Kernel memory of all TCP sockets (pages, from /proc/net/sockstat) in KiB."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return 0


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(value: float) -> float:
    return round(value * 1000, 2)


class Device:
    """One xiaozhi device over a real WebSocket; a reader task drains what it is sent."""

    def __init__(self, port: int, index: int) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws"
        self.token = f"bench-{index}"
        self.ws: Any = None
        self.session_id = ""
        self.closed = False
        self.inbox: asyncio.Queue[str | bytes] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self, *, keep: bool = False) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self.token}", "Protocol-Version": "1"},
            compression=None,
            ping_interval=None,
            max_queue=64,
        )
        await self.ws.send(json.dumps({"type": "hello", "version": 1, "transport": "websocket"}))
        while True:
            msg = await self.ws.recv()
            if isinstance(msg, str) and json.loads(msg)["type"] == "hello":
                self.session_id = json.loads(msg)["session_id"]
                break
        if keep:
            self.inbox = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if self.inbox is not None:
                    self.inbox.put_nowait(msg)
        except Exception:  # noqa: S110 - a dropped socket is counted, not raised
            pass
        self.closed = True

    async def listen(self, state: str) -> None:
        await self.ws.send(
            json.dumps(
                {"type": "listen", "state": state, "mode": "manual", "session_id": self.session_id}
            )
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader


def _packets() -> tuple[bytes, bytes]:
    """(speech-like, quiet-noise) 60 ms Opus packets at 16 kHz."""
    import numpy as np

    from runtime.audio.opus import OpusEncoder

    rng = np.random.default_rng(7)
    n = 960
    loud = (6000 * np.sin(np.arange(n) * 2 * np.pi * 300 / 16000)).astype("<i2").tobytes()
    quiet = (rng.normal(0, 30, n)).astype("<i2").tobytes()
    with OpusEncoder(16_000, 60, 5) as enc:
        return enc.encode(loud), enc.encode(quiet)


async def _turn(device: Device, loud: bytes) -> tuple[float, float]:
    """One manual turn: seconds from `listen stop` to the `stt` message and to the
    first Opus frame."""
    inbox = device.inbox
    assert inbox is not None
    while not inbox.empty():
        inbox.get_nowait()
    await device.listen("start")
    for _ in range(SPEECH_FRAMES):
        await device.ws.send(loud)
        await asyncio.sleep(0.06)
    await device.listen("stop")
    sent = time.perf_counter()
    stt_at = audio_at = 0.0

    async def until_done() -> None:
        nonlocal stt_at, audio_at
        while True:
            msg = await inbox.get()
            now = time.perf_counter()
            if isinstance(msg, bytes):
                audio_at = audio_at or now
                continue
            data = json.loads(msg)
            if data.get("type") == "stt" and not stt_at:
                stt_at = now
            if data.get("type") == "tts" and data.get("state") == "stop":
                return

    await asyncio.wait_for(until_done(), timeout=15)
    if not audio_at or not stt_at:
        raise RuntimeError("a turn ended without an stt message or audio")
    return stt_at - sent, audio_at - sent


async def _probe(port: int, index: int, loud: bytes, turns: int) -> dict[str, Any]:
    device = Device(port, index)
    await device.open(keep=True)
    try:
        values = [await _turn(device, loud) for _ in range(turns + 2)][2:]  # 2 warm-up turns
    finally:
        await device.close()
    stt = [v[0] for v in values]
    audio = [v[1] for v in values]
    return {
        "turns": turns,
        "first_audio_p50_ms": _ms(statistics.median(audio)),
        "first_audio_p90_ms": _ms(_quantile(audio, 0.90)),
        "first_audio_p99_ms": _ms(_quantile(audio, 0.99)),
        "first_audio_max_ms": _ms(max(audio)),
        "stt_p50_ms": _ms(statistics.median(stt)),
    }


async def _stream(devices: list[Device], packet: bytes, stop: asyncio.Event) -> int:
    """Every device sends one packet per 60 ms, staggered, until `stop`; frames sent."""
    loop = asyncio.get_running_loop()
    sent = 0

    async def one(device: Device, offset: float) -> None:
        nonlocal sent
        start = loop.time() + offset
        n = 0
        while not stop.is_set() and not device.closed:
            try:
                await device.ws.send(packet)
            except Exception:  # counted as dropped by the caller
                device.closed = True
                return
            sent += 1
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.06 - loop.time()))

    await asyncio.gather(*(one(d, 0.06 * i / len(devices)) for i, d in enumerate(devices)))
    return sent


async def _open_many(port: int, count: int, start: int) -> list[Device]:
    devices = [Device(port, start + i) for i in range(count)]
    for i in range(0, count, 25):
        await asyncio.gather(*(d.open() for d in devices[i : i + 25]))
    return devices


async def _fake_stats(port: int) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient() as client:
        return dict((await client.get(f"http://127.0.0.1:{port}/fake/stats")).json())


async def _level(
    port: int,
    fakes_port: int,
    pid: int,
    n: int,
    first: int,
    loud: bytes,
    quiet: bytes,
    turns: int,
    unloaded: dict[str, Any],
) -> dict[str, Any]:
    devices = await _open_many(port, n, first)
    stop = asyncio.Event()
    streaming: asyncio.Task[int] | None = None
    try:
        for d in devices:
            await d.listen("start")
        streaming = asyncio.create_task(_stream(devices, quiet, stop))
        await asyncio.sleep(1.5)  # every STT socket opened, decoders allocated
        load_before = os.getloadavg()[0]
        cpu_before, started = _cpu_s(pid), time.perf_counter()
        probe = await _probe(port, 900_000 + first, loud, turns)
        cpu = (_cpu_s(pid) - cpu_before) / (time.perf_counter() - started)
        stats = await _fake_stats(fakes_port)
        stop.set()
        sent = await streaming
    finally:
        stop.set()
        if streaming is not None and not streaming.done():
            await streaming
        dropped = sum(d.closed for d in devices)
        await asyncio.gather(*(d.close() for d in devices))
    p50 = probe["first_audio_p50_ms"] / unloaded["first_audio_p50_ms"]
    p99 = probe["first_audio_p99_ms"] / unloaded["first_audio_p99_ms"]
    # The fakes' open STT sockets, less the probe's (closed by then): one per device.
    stt_open = int(stats["stt_open"])
    held = dropped == 0 and stt_open >= n
    return {
        "devices": n,
        "probe": probe,
        "ratio_p50": round(p50, 2),
        "ratio_p99": round(p99, 2),
        "dropped": dropped,
        "stt_sockets_open": stt_open,
        "frames_sent": sent,
        "server_cpu": round(cpu, 3),
        "load_average_1m": round((load_before + os.getloadavg()[0]) / 2, 2),
        "holds": held and p50 <= RATIO_LIMIT and p99 <= RATIO_LIMIT,
    }


async def _memory(port: int, fakes_port: int, pid: int, count: int, quiet: bytes) -> dict[str, Any]:
    warm = await _open_many(port, 20, 500_000)  # warm caches and allocator pools
    for d in warm:
        await d.listen("start")
    stop = asyncio.Event()
    task = asyncio.create_task(_stream(warm, quiet, stop))
    await asyncio.sleep(1.0)
    stop.set()
    await task
    await asyncio.gather(*(d.close() for d in warm))
    await asyncio.sleep(1.0)
    base, tcp_base = _rss_kib(pid), _tcp_mem_kib()
    devices = await _open_many(port, count, 600_000)
    await asyncio.sleep(1.0)
    idle = _rss_kib(pid)
    for d in devices:
        await d.listen("start")
    stop = asyncio.Event()
    task = asyncio.create_task(_stream(devices, quiet, stop))
    await asyncio.sleep(3.0)
    streaming, tcp = _rss_kib(pid), _tcp_mem_kib()
    stats = await _fake_stats(fakes_port)
    stop.set()
    await task
    await asyncio.gather(*(d.close() for d in devices))
    return {
        "devices": count,
        "stt_sockets_open": stats["stt_open"],
        "idle_kib_per_device": round((idle - base) / count, 1),
        "streaming_kib_per_device": round((streaming - base) / count, 1),
        # Both ends of both sockets on this machine (device and STT, runtime and peers).
        "kernel_tcp_kib_per_device": round((tcp - tcp_base) / count, 1),
    }


async def _wait_ready(port: int, what: str) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(400):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://127.0.0.1:{port}/health")).status_code < 500:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


def runtime_env(port: int, fakes_port: int) -> dict[str, str]:
    """The runtime's environment: as a deployment sets it, pointed at the fakes."""
    fakes = f"http://127.0.0.1:{fakes_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENDOT_", "RUNTIME_"))}
    env.update(
        {
            "RUNTIME_HOST": "127.0.0.1",
            "RUNTIME_PORT": str(port),
            "PLATFORM_API_INTERNAL_URL": f"{fakes}/api",
            "OPENDOT_RUNTIME_INTERNAL_SECRET": SECRET,
            "DEEPGRAM_API_KEY": "dg_bench_key_not_a_placeholder",
            "DEEPGRAM_BASE_URL": fakes,
            "OPENAI_API_KEY": "sk-bench-key-not-a-placeholder",
            "OPENAI_BASE_URL": f"{fakes}/v1",
            "OPENDOT_ALLOW_PRIVATE_BASE_URLS": "true",  # the fakes live on loopback
            "RUNTIME_WARM_LOCAL_ENGINES": "false",  # no offline engine is used
            "CLOSE_DEVICE_AFTER_TURN": "false",
            "RUNTIME_IDLE_TIMEOUT_S": "3600",
            "RUNTIME_MAX_UTTERANCE_S": "300",  # devices listen for a whole level
            "RUNTIME_SHUTDOWN_DRAIN_S": "0",
        }
    )
    return env


def _spawn(port: int, fakes_port: int, workdir: str) -> list[subprocess.Popen[bytes]]:
    """Start the fakes (CPU 1, beside this generator) and the runtime as shipped (CPU 0)."""
    taskset = shutil.which("taskset") if (os.cpu_count() or 1) > 1 else None
    agent = json.dumps(bench_agent())
    fakes_cmd = [
        sys.executable,
        "-c",
        f"from opendot.bench.provider_fakes import serve; serve({fakes_port}, {agent!r})",
    ]
    runtime_cmd = [sys.executable, "-m", "runtime", "runtime"]
    if taskset:
        fakes_cmd = [taskset, "-c", CLIENT_CPU, *fakes_cmd]
        runtime_cmd = [taskset, "-c", SERVER_CPU, *runtime_cmd]
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = runtime_env(port, fakes_port)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    procs = [subprocess.Popen(fakes_cmd, cwd=workdir, env=env)]  # noqa: S603
    with open(os.path.join(workdir, "runtime.log"), "wb") as log_file:
        procs.append(
            subprocess.Popen(  # noqa: S603 - our own interpreter
                runtime_cmd, cwd=workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT
            )
        )
    return procs


def _print_log(workdir: str) -> None:
    with contextlib.suppress(OSError), open(os.path.join(workdir, "runtime.log")) as f:
        print(f.read()[-4000:], file=sys.stderr)


async def measure(*, quick: bool = False, max_devices: int = 1000) -> dict[str, Any]:
    taskset = shutil.which("taskset") if (os.cpu_count() or 1) > 1 else None
    if taskset:
        os.sched_setaffinity(0, {int(CLIENT_CPU)})
    port, fakes_port = _free_port(), _free_port()
    workdir = tempfile.mkdtemp(prefix="opendot-bench-")  # no stray .env is read
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = _spawn(port, fakes_port, workdir)
        runtime = procs[1]
        await _wait_ready(fakes_port, "the provider fakes")
        await _wait_ready(port, "the runtime")
        loud, quiet = _packets()
        results: dict[str, Any] = {
            "pinned": bool(taskset),
            "load_average": {"start": [round(x, 2) for x in os.getloadavg()]},
        }
        _progress("latency, unloaded")
        before = await _fake_stats(fakes_port)
        turns = 15 if quick else 100
        unloaded = await _probe(port, 1, loud, turns)
        after = await _fake_stats(fakes_port)
        results["latency"] = unloaded
        results["stt_audio_s_per_turn"] = round(
            (after["stt_audio_seconds"] - before["stt_audio_seconds"]) / (turns + 2), 3
        )
        _progress("memory")
        results["memory"] = await _memory(
            port, fakes_port, runtime.pid, 30 if quick else 300, quiet
        )
        _progress("capacity")
        levels = [n for n in (QUICK_LEVELS if quick else LEVELS) if n <= max_devices]
        rows: list[dict[str, Any]] = []
        index, failures = 1000, 0
        for n in levels:
            _progress(f"capacity: {n} streaming devices")
            row = await _level(
                port, fakes_port, runtime.pid, n, index, loud, quiet, 5 if quick else 30, unloaded
            )
            index += n + 1
            rows.append(row)
            await asyncio.sleep(1.0)
            failures = 0 if row["holds"] else failures + 1
            if failures == 2:
                break
        held = [r["devices"] for r in rows if r["holds"]]
        results["capacity"] = {
            "criterion": f"probe listen stop -> first audio p50 and p99 <= {RATIO_LIMIT}x"
            " unloaded, no device dropped",
            "devices_per_core": max(held) if held else 0,
            "levels": rows,
        }
        results["load_average"]["end"] = [round(x, 2) for x in os.getloadavg()]
        return results
    except BaseException:
        _print_log(workdir)
        raise
    finally:
        for proc in reversed(procs):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            if proc.poll() is None:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def format_table(results: dict[str, Any]) -> str:
    lat, mem, cap = results["latency"], results["memory"], results["capacity"]
    rows = [
        (
            "listen stop -> first Opus frame p50 / p90 / p99",
            f"{lat['first_audio_p50_ms']} / {lat['first_audio_p90_ms']} / "
            f"{lat['first_audio_p99_ms']} ms (p99 target <= 15)",
            "14.5 / 20.1 / 27.0 ms",
        ),
        ("listen stop -> stt message p50", f"{lat['stt_p50_ms']} ms", "1.4 ms"),
        (
            "streaming devices per core (probe <= 1.25x, none dropped)",
            f"{cap['devices_per_core']} (target >= 300)",
            "50",
        ),
        (
            "RSS per streaming device (own STT socket)",
            f"{mem['streaming_kib_per_device']} KiB (target <= 128)",
            "0.34 MiB",
        ),
        ("RSS per idle connected device", f"{mem['idle_kib_per_device']} KiB", "117 KiB"),
        ("kernel TCP memory per streaming device", f"{mem['kernel_tcp_kib_per_device']} KiB", ""),
        ("provider STT audio per turn", f"{results['stt_audio_s_per_turn']} s", ""),
    ]
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [f"{'real sockets (headline)':<{width}}  {'measured':<{value_width}}  original Node"]
    lines += [f"{a:<{width}}  {b:<{value_width}}  {c}" for a, b, c in rows]
    lines.append(f"capacity levels ({cap['criterion']}):")
    for r in cap["levels"]:
        p = r["probe"]
        lines.append(
            f"  {r['devices']:>4} devices  probe p50 {p['first_audio_p50_ms']} ms"
            f" ({r['ratio_p50']}x)  p99 {p['first_audio_p99_ms']} ms ({r['ratio_p99']}x)"
            f"  dropped {r['dropped']}  STT sockets {r['stt_sockets_open']}"
            f"  server CPU {r['server_cpu']:.0%}  load {r['load_average_1m']}  "
            + ("ok" if r["holds"] else "FAILS")
        )
    load = results["load_average"]
    lines.append(f"load average (1/5/15 min) at start {load['start']}, at end {load['end']}")
    return "\n".join(lines)
