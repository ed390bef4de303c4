"""`opendot bench runtime`: latency, concurrency and memory of the voice runtime.

Two parts. The headline (`opendot.bench.runtime_sockets`, key "sockets" of the
JSON) runs the runtime as shipped behind loopback fakes of the real providers'
wire protocols: what a deployment gets. The second part, below, is the
"pipeline floor": the runtime's own cost with in-process provider doubles and
no provider socket at all, a bound no deployment reaches.

Pipeline floor method. The runtime runs in its own process (pinned to CPU 0 with `taskset`
when available) with zero-latency provider doubles (energy VAD, scripted STT,
function LLM and TTS) and an in-memory internal API, so everything measured is
the runtime's own cost: WebSocket handling, framing, Opus decode and encode,
VAD bookkeeping, turn orchestration and pacing. The load generator is this
process (pinned to CPU 1), speaking the device protocol over real sockets.

(a) added latency: the send time of the uplink frame that completes the
    endpointing hangover (300 ms of silence) to the arrival of the first
    downlink Opus frame, over many turns; p50 / p99.
(b) concurrency: N devices (50, 100, 200, ...) all stream 60 ms Opus frames in
    real time. The server reports two histograms: frame-processing lag, from
    the instant its event loop read a frame off the socket to the end of that
    frame's processing (so it includes waiting for the session's turn on the
    loop), and event-loop lag (how late a 50 ms timer fires: mostly what the
    machine's other processes cost us). The largest N whose p99 frame lag is
    below 20 ms, with the generator on time and no backlog left on the server,
    is sustained, judged on the median of three 2 s windows (a neighbour's
    burst on a shared machine spoils one window, not the level); a level that
    fails while the server waited for its core (run-queue wait from
    /proc/<pid>/schedstat above 5 %) is measured again, up to three times. The
    server's CPU share per level gives the capacity a fully available core
    would have.
(c) RSS per session: server RSS growth per idle session (hello done) and per
    streaming session (listening, decoder allocated, frames flowing).
(d) lifetime: 10,000 sessions opened and closed, 20 at a time, each sending
    audio; RSS before and after, and a turn's latency before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

SERVER_CPU = "0"
CLIENT_CPU = "1"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    parser.add_argument("--max-sessions", type=int, default=1000, help="concurrency ceiling")
    parser.add_argument(
        "--part",
        choices=("all", "sockets", "floor"),
        default="all",
        help="sockets: the runtime as shipped behind real-protocol provider fakes (the"
        " headline); floor: in-process provider doubles (the pipeline floor); all: both",
    )


def run(args: argparse.Namespace) -> int:
    from opendot.bench import runtime_sockets

    results: dict[str, Any] = {}
    if args.part in ("all", "floor"):
        results = asyncio.run(measure(quick=args.quick, max_sessions=args.max_sessions))
    if args.part in ("all", "sockets"):
        results["sockets"] = asyncio.run(
            runtime_sockets.measure(quick=args.quick, max_devices=args.max_sessions)
        )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    tables = []
    if "sockets" in results:
        tables.append(runtime_sockets.format_table(results["sockets"]))
    if "latency" in results:
        tables.append(format_table(results))
    print("\n\n".join(tables))
    return 0


# --- the server side (runs in the child process) ------------------------------------------


def serve(port: int) -> None:
    """Run the runtime with provider doubles and an in-memory internal API."""
    import httpx

    from runtime.app import create_app
    from runtime.pipeline.doubles import double_pipeline
    from runtime.server import RuntimeServer, build_config
    from runtime.settings import RuntimeSettings

    def api(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/device-runtime/verify"):
            token = json.loads(request.content)["token"]
            return httpx.Response(
                200,
                json={"userId": "u", "device": {"id": token}, "agent": None, "memory": []},
            )
        return httpx.Response(200, json={"ok": True})

    values: dict[str, Any] = {
        "RUNTIME_HOST": "127.0.0.1",
        "RUNTIME_PORT": port,
        "OPENDOT_RUNTIME_INTERNAL_SECRET": "bench-secret-not-a-placeholder",
        "CLOSE_DEVICE_AFTER_TURN": False,
        "RUNTIME_IDLE_TIMEOUT_S": 3600,
        "RUNTIME_SHUTDOWN_DRAIN_S": 0,
        "OPENDOT_LOG_LEVEL": "WARNING",
    }
    settings = RuntimeSettings(_env_file=None, **values)  # type: ignore[call-arg]
    app = create_app(
        settings,
        pipeline_factory=lambda _a, _s, _u: double_pipeline("<chunk>Hi there.</chunk>", "hello"),
        api_transport=httpx.MockTransport(api),
    )
    server = RuntimeServer(build_config(app, settings, ws_ping_interval=None), app)
    asyncio.run(server.serve())


def _progress(stage: str) -> None:
    print(f"bench runtime: {stage} ...", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _runqueue_wait_s(pid: int) -> float:
    """Seconds the process's threads were ready to run but waited for a CPU: time
    other processes took from it (/proc/<pid>/task/*/schedstat, second field)."""
    total = 0
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with (
                contextlib.suppress(OSError, ValueError, IndexError),
                open(f"/proc/{pid}/task/{task}/schedstat") as f,
            ):
                total += int(f.read().split()[1])
    return total / 1e9


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --- the load generator ------------------------------------------------------------------


class Device:
    def __init__(self, port: int, index: int) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws"
        self.token = f"bench-{index}"
        self.ws: Any = None
        self.session_id = ""

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self.token}", "Protocol-Version": "1"},
            compression=None,
            ping_interval=None,
            max_queue=4,
        )
        await self.ws.send(json.dumps({"type": "hello", "version": 1, "transport": "websocket"}))
        while True:
            msg = await self.ws.recv()
            if isinstance(msg, str) and json.loads(msg)["type"] == "hello":
                self.session_id = json.loads(msg)["session_id"]
                return

    async def listen(self) -> None:
        await self.ws.send(
            json.dumps(
                {"type": "listen", "state": "start", "mode": "auto", "session_id": self.session_id}
            )
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


def _packets() -> tuple[bytes, bytes, bytes]:
    """(loud, quiet-noise, silence) 60 ms Opus packets at 16 kHz."""
    import numpy as np

    from runtime.audio.opus import OpusEncoder

    rng = np.random.default_rng(7)
    n = 960
    loud = (6000 * np.sin(np.arange(n) * 2 * np.pi * 300 / 16000)).astype("<i2").tobytes()
    quiet = (rng.normal(0, 30, n)).astype("<i2").tobytes()
    with OpusEncoder(16_000, 60, 5) as enc:
        return enc.encode(loud), enc.encode(quiet), enc.encode(bytes(2 * n))


LOUD_FRAMES = 6


def _silences_to_end(loud: bytes, silence: bytes) -> int:
    """How many silence packets after the loud ones end the utterance on the server.

    Found by running the server's own decoder and VAD double over the same packets:
    Opus' decoder delay makes the first silence packet still partly loud.
    """
    from runtime.audio.opus import OpusDecoder
    from runtime.pipeline.doubles import EnergyVAD
    from runtime.pipeline.interfaces import VadEventKind, VadOptions

    async def find() -> int:
        stream = EnergyVAD().open(VadOptions())
        with OpusDecoder(16_000) as decoder:
            for _ in range(LOUD_FRAMES):
                await stream.feed(decoder.decode(loud))
            for n in range(1, 50):
                events = await stream.feed(decoder.decode(silence))
                if any(e.kind is VadEventKind.SPEECH_END for e in events):
                    return n
        raise RuntimeError("the VAD never ended the utterance")

    return asyncio.run(find())


async def _turn_latency(device: Device, loud: bytes, silence: bytes, silences: int) -> float:
    """One turn; seconds from the hangover-completing frame to the first Opus frame."""
    ws = device.ws
    await device.listen()
    for _ in range(LOUD_FRAMES):
        await ws.send(loud)
        await asyncio.sleep(0.06)
    sent = 0.0
    for _ in range(silences):
        await asyncio.sleep(0.06)
        await ws.send(silence)
        sent = time.perf_counter()

    async def first_audio() -> float:
        while True:
            msg = await ws.recv()
            if isinstance(msg, bytes):
                return time.perf_counter()

    first = await asyncio.wait_for(first_audio(), timeout=10)

    async def stop() -> None:
        while True:  # let the reply finish
            msg = await ws.recv()
            if isinstance(msg, str) and '"stop"' in msg:
                return

    await asyncio.wait_for(stop(), timeout=10)
    return first - sent


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _metrics(port: int) -> dict[str, Any]:
    """From /metrics: cumulative bucket counts of the two lag histograms and the
    count of uplink frames the server has processed."""
    import httpx

    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    out: dict[str, Any] = {"frame": {}, "loop": {}, "frames_in": 0.0}
    for line in text.splitlines():
        if line.startswith('opendot_frames_in_total{kind="device"}'):
            out["frames_in"] = float(line.split()[-1])
        for key, name in (
            ("frame", "opendot_frame_processing_seconds_bucket"),
            ("loop", "opendot_event_loop_lag_seconds_bucket"),
        ):
            if line.startswith(name):
                le = line.split('le="')[1].split('"')[0]
                out[key][float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
    return out


def _p99_from(before: Mapping[float, float], after: Mapping[float, float]) -> float:
    """The interval's 99th percentile, interpolated inside its bucket (as Prometheus'
    histogram_quantile does); the last finite bound when it lies beyond every bucket."""
    bounds = sorted(after)
    total = after[bounds[-1]] - before.get(bounds[-1], 0.0)
    if total <= 0:
        return 0.0
    rank = 0.99 * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = after[bound] - before.get(bound, 0.0)
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


async def _stream(devices: list[Device], packet: bytes, seconds: float) -> int:
    """Every device sends one packet per 60 ms, staggered; returns frames sent."""
    loop = asyncio.get_running_loop()
    sent = 0

    async def one(device: Device, offset: float) -> None:
        nonlocal sent
        start = loop.time() + offset
        n = 0
        while loop.time() < start + seconds:
            await device.ws.send(packet)
            sent += 1
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.06 - loop.time()))

    await asyncio.gather(*(one(d, 0.06 * i / len(devices)) for i, d in enumerate(devices)))
    return sent


async def _open_many(port: int, count: int, start: int) -> list[Device]:
    devices = [Device(port, start + i) for i in range(count)]
    for i in range(0, count, 50):
        await asyncio.gather(*(d.open() for d in devices[i : i + 50]))
    return devices


async def measure(*, quick: bool = False, max_sessions: int = 1000) -> dict[str, Any]:
    taskset = shutil.which("taskset") if (os.cpu_count() or 1) > 1 else None
    if taskset:
        os.sched_setaffinity(0, {int(CLIENT_CPU)})
    port = _free_port()
    command = [sys.executable, "-c", f"from opendot.bench.runtime import serve; serve({port})"]
    if taskset:
        command = [taskset, "-c", SERVER_CPU, *command]
    server = subprocess.Popen(command)  # noqa: S603, ASYNC220 - our own interpreter, started once
    try:
        await _wait_ready(port)
        loud, quiet, silence = _packets()
        silences = await asyncio.to_thread(_silences_to_end, loud, silence)
        results: dict[str, Any] = {
            "pinned": bool(taskset),
            "load_average": {"start": [round(x, 2) for x in os.getloadavg()]},
        }
        _progress("latency")
        results["latency"] = await _bench_latency(
            port, loud, silence, silences, 15 if quick else 60
        )
        _progress("memory")
        results["memory"] = await _bench_memory(port, server.pid, quiet, 50 if quick else 300)
        _progress("concurrency")
        results["concurrency"] = await _bench_concurrency(
            port, server.pid, quiet, max_sessions, quick=quick
        )
        _progress("lifetime")
        results["lifetime"] = await _bench_lifetime(
            port, server.pid, loud, silence, silences, 400 if quick else 10_000
        )
        results["load_average"]["end"] = [round(x, 2) for x in os.getloadavg()]
        return results
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=15)
        if server.poll() is None:
            server.kill()


async def _wait_ready(port: int) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError("runtime did not start")


async def _bench_latency(
    port: int, loud: bytes, silence: bytes, silences: int, turns: int
) -> dict[str, Any]:
    device = Device(port, 0)
    await device.open()
    values = [await _turn_latency(device, loud, silence, silences) for _ in range(turns + 3)][3:]
    await device.close()
    return {
        "turns": turns,
        "p50_ms": round(statistics.median(values) * 1000, 2),
        "p99_ms": round(_quantile(values, 0.99) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
    }


async def _bench_memory(port: int, pid: int, quiet: bytes, count: int) -> dict[str, Any]:
    warm = await _open_many(port, 20, 10_000)  # warm caches and allocator pools
    await _stream(warm, quiet, 1.0)
    for d in warm:
        await d.close()
    await asyncio.sleep(0.5)
    base = _rss_kib(pid)
    devices = await _open_many(port, count, 20_000)
    await asyncio.sleep(0.5)
    idle = _rss_kib(pid)
    for d in devices:
        await d.listen()
    await _stream(devices, quiet, 3.0)
    streaming = _rss_kib(pid)
    for d in devices:
        await d.close()
    return {
        "sessions": count,
        "idle_kib_per_session": round((idle - base) / count, 1),
        "streaming_kib_per_session": round((streaming - base) / count, 1),
    }


CONCURRENCY_LEVELS = (50, 100, 200, 300, 400, 500, 600)
QUICK_LEVELS = (50, 100)
LAG_LIMIT_S = 0.020  # the criterion: p99 frame-processing lag < 20 ms
CONTENDED = 0.05  # runqueue wait share above which a level says more about the machine
ATTEMPTS = 3  # measurements of a level that fails while contended
RETRY_BUDGET_S = 90.0  # no new attempt once the concurrency part has run this long


async def _bench_level(
    port: int, pid: int, quiet: bytes, n: int, first_index: int, windows: int, window_s: float
) -> dict[str, Any]:
    """Stream `n` devices in real time; measure `windows` consecutive windows."""
    devices = await _open_many(port, n, first_index)
    frame_p99s: list[float] = []
    loop_p99s: list[float] = []
    try:
        for d in devices:
            await d.listen()
        await _stream(devices, quiet, 1.0)  # settle: decoders and VAD streams allocated
        load_before = os.getloadavg()[0]
        first = before = await _metrics(port)
        cpu_before = _cpu_s(pid)
        wait_before = _runqueue_wait_s(pid)
        started = time.perf_counter()
        sent = 0
        for _ in range(windows):
            sent += await _stream(devices, quiet, window_s)
            after = await _metrics(port)
            frame_p99s.append(_p99_from(before["frame"], after["frame"]))
            loop_p99s.append(_p99_from(before["loop"], after["loop"]))
            before = after
        await asyncio.sleep(0.1)  # the last frames reach the server
        elapsed = time.perf_counter() - started
        cpu = (_cpu_s(pid) - cpu_before) / elapsed
        waited = (_runqueue_wait_s(pid) - wait_before) / elapsed
        last = await _metrics(port)
    finally:
        await asyncio.gather(*(d.close() for d in devices))
    processed = last["frames_in"] - first["frames_in"]
    # The generator must have kept real time and the server must have processed what
    # was sent (no backlog hiding in socket buffers), or the level proves nothing.
    client_kept_up = sent >= 0.9 * n * windows * window_s / 0.06
    server_kept_up = processed >= 0.98 * sent
    criterion = statistics.median(frame_p99s)
    return {
        "sessions": n,
        "frames_per_s": round(sent / elapsed),
        "frame_lag_p99_ms": round(_p99_from(first["frame"], last["frame"]) * 1000, 2),
        "frame_lag_p99_median_window_ms": round(criterion * 1000, 2),
        "frame_lag_p99_windows_ms": [round(v * 1000, 2) for v in frame_p99s],
        "loop_lag_p99_ms": round(_p99_from(first["loop"], last["loop"]) * 1000, 2),
        "loop_lag_p99_median_window_ms": round(statistics.median(loop_p99s) * 1000, 2),
        "server_cpu": round(cpu, 3),
        # Share of the wall time the server was runnable but another process had its
        # core: above CONTENDED the level measured the neighbours, not the runtime.
        "server_runqueue_wait": round(waited, 3),
        "contended": waited > CONTENDED,
        # Load-independent capacity: sessions one fully available core would carry.
        "sessions_per_core": round(n / cpu) if cpu > 0 else None,
        "client_kept_up": client_kept_up,
        "server_kept_up": server_kept_up,
        "load_average_1m": round((load_before + os.getloadavg()[0]) / 2, 2),
        "meets_criterion": criterion < LAG_LIMIT_S and client_kept_up and server_kept_up,
    }


async def _bench_concurrency(
    port: int, pid: int, quiet: bytes, ceiling: int, *, quick: bool
) -> dict[str, Any]:
    """Ramp the number of streaming devices; the largest level whose p99 frame lag
    stays under 20 ms is sustained. On a shared machine a neighbour's burst (or the
    collection of the previous level's closed sessions) can spoil a few seconds, so
    each level is measured in three windows and judged by the median window's p99;
    the whole level's p99 is reported too. A level that fails while the server
    waited for its core (run-queue wait above 5 % of the time) is measured again,
    up to three times while the part is under 90 s old. The ramp stops after two
    failed levels."""
    levels = [n for n in (QUICK_LEVELS if quick else CONCURRENCY_LEVELS) if n <= ceiling]
    windows, window_s = (3, 1.0) if quick else (3, 2.0)
    rows: list[dict[str, Any]] = []
    sustained, failures, index = 0, 0, 100_000
    deadline = time.perf_counter() + RETRY_BUDGET_S
    for n in levels:
        for attempt in range(1, ATTEMPTS + 1):
            row = await _bench_level(port, pid, quiet, n, index, windows, window_s)
            row["attempt"] = attempt
            index += n
            await asyncio.sleep(0.5)
            # Measure again only when another process took the core meanwhile.
            if row["meets_criterion"] or not row["contended"] or time.perf_counter() > deadline:
                break
        rows.append(row)
        if row["meets_criterion"]:
            sustained, failures = n, 0
        else:
            failures += 1
            if failures == 2:
                break
    capacities = [r["sessions_per_core"] for r in rows if r["sessions_per_core"]]
    return {
        "criterion": "median over 3 windows of the p99 frame-processing lag"
        " (frame read by the loop -> processed) < 20 ms",
        "sustained_sessions": sustained,
        "projected_sessions_per_core": min(capacities[-2:]) if capacities else None,
        "levels": rows,
    }


async def _bench_lifetime(
    port: int, pid: int, loud: bytes, silence: bytes, silences: int, total: int
) -> dict[str, Any]:
    probe = Device(port, 1)
    await probe.open()
    first = [await _turn_latency(probe, loud, silence, silences) for _ in range(5)]
    await probe.close()
    rss_before = _rss_kib(pid)
    started = time.perf_counter()
    for batch in range(0, total, 20):
        devices = [Device(port, 200_000 + batch + i) for i in range(20)]
        await asyncio.gather(*(d.open() for d in devices))
        for d in devices:
            await d.listen()
            await d.ws.send(silence)  # allocates this session's Opus decoder
        await asyncio.gather(*(d.close() for d in devices))
    seconds = time.perf_counter() - started
    await asyncio.sleep(1.0)
    rss_after = _rss_kib(pid)
    probe = Device(port, 2)
    await probe.open()
    last = [await _turn_latency(probe, loud, silence, silences) for _ in range(5)]
    await probe.close()
    return {
        "sessions": total,
        "seconds": round(seconds, 1),
        "rss_before_mib": round(rss_before / 1024, 1),
        "rss_after_mib": round(rss_after / 1024, 1),
        "first_turn_ms": round(statistics.median(first) * 1000, 2),
        "last_turn_ms": round(statistics.median(last) * 1000, 2),
    }


def format_table(results: Mapping[str, Any]) -> str:
    lat, mem = results["latency"], results["memory"]
    con, life = results["concurrency"], results["lifetime"]
    rows = [
        ("added latency p50 (end of speech -> first Opus)", f"{lat['p50_ms']} ms", "16 ms"),
        ("added latency p99", f"{lat['p99_ms']} ms (target <= 15)", "25 ms"),
        (
            "streaming devices on one core (p99 frame lag < 20 ms)",
            f"{con['sustained_sessions']} (target >= 300)",
            "~50",
        ),
        ("RSS per idle session", f"{mem['idle_kib_per_session']} KiB (<= 48)", "72 KiB"),
        (
            "RSS per streaming session",
            f"{mem['streaming_kib_per_session']} KiB (<= 256)",
            "389 KiB",
        ),
        (
            f"lifetime: {life['sessions']} sessions, RSS",
            f"{life['rss_before_mib']} -> {life['rss_after_mib']} MiB",
            "no audio after ~78",
        ),
        (
            "lifetime: turn latency first -> last",
            f"{life['first_turn_ms']} -> {life['last_turn_ms']} ms",
            "",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    title = "pipeline floor (in-process doubles)"
    lines = [f"{title:<{width}}  {'measured':<{value_width}}  original Node"]
    lines += [f"{a:<{width}}  {b:<{value_width}}  {c}" for a, b, c in rows]
    lines.append("")
    lines.append(f"concurrency levels (criterion: {con['criterion']}):")
    for level in con["levels"]:
        notes = [] if level["client_kept_up"] else ["load generator fell behind"]
        if not level["server_kept_up"]:
            notes.append("server fell behind")
        windows = "/".join(f"{v:g}" for v in level["frame_lag_p99_windows_ms"])
        lines.append(
            f"  {level['sessions']:>4} sessions  {level['frames_per_s']:>5} frames/s  "
            f"frame lag p99 {level['frame_lag_p99_ms']} ms (windows {windows})  "
            f"loop lag p99 {level['loop_lag_p99_ms']} ms  "
            f"server CPU {level['server_cpu']:.0%} (~{level['sessions_per_core']}/core)  "
            f"waited {level['server_runqueue_wait']:.0%}  load {level['load_average_1m']}  "
            + ("ok" if level["meets_criterion"] else "FAILS")
            + (" (contended)" if level["contended"] and not level["meets_criterion"] else "")
            + (f" (attempt {level['attempt']})" if level["attempt"] > 1 else "")
            + (f"  ({', '.join(notes)})" if notes else "")
        )
    lines.append(
        f"projected sessions per fully available core: {con['projected_sessions_per_core']}"
    )
    load = results.get("load_average")
    if load:
        lines.append(f"load average (1/5/15 min) at start {load['start']}, at end {load['end']}")
    lines.append(f"server pinned to one core: {results['pinned']}")
    return "\n".join(lines)
