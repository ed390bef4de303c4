"""The targets of each issue, checked against the JSON each bench writes.

One function per bench turns its results into rows (metric, measured, target,
verdict). They read keys defensively: a bench whose output lacks a figure
yields a "missing" row rather than a crash, so a changed bench shows up in
the table instead of hiding the rest of the suite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

ISSUES = {
    "db": 2,
    "functions": 3,
    "audio": 4,
    "suite": 5,
    "runtime": 7,
    "runtime (real sockets)": 13,
    "realtime": 14,
    "firmware": 17,
}

# The original Node runtime behind zero-latency fakes (issue 7's figures).
NODE_LATENCY_P50_MS = 16.0
NODE_LATENCY_P99_MS = 25.0
NODE_STREAMING_DEVICES = 50
NODE_IDLE_KIB = 72.0
NODE_STREAMING_KIB = 389.0

# The original Node runtime behind real-protocol provider fakes (issue 13's figures).
NODE_SOCKETS_P50_MS = 14.5
NODE_SOCKETS_P99_MS = 27.0
NODE_SOCKETS_STT_MS = 1.4
NODE_SOCKETS_DEVICES = 50
NODE_SOCKETS_STREAMING_KIB = 348.0  # 0.34 MiB
NODE_SOCKETS_IDLE_KIB = 117.0

# Issue 13's targets (real sockets, one core).
SOCKETS_P99_MS = 15.0
SOCKETS_DEVICES = 300
SOCKETS_STREAMING_KIB = 128.0

# Issue 7's targets.
RUNTIME_P99_MS = 15.0
RUNTIME_SESSIONS = 300
RUNTIME_IDLE_KIB = 48.0
RUNTIME_STREAMING_KIB = 256.0
LIFETIME_SESSIONS = 10_000
# "RSS flat" and "the last turn as fast as the first", with room for noise.
LIFETIME_RSS_GROWTH = 0.10
LIFETIME_TURN_SLOWDOWN = 1.5
LIFETIME_TURN_SLACK_MS = 2.0


@dataclass(frozen=True)
class Row:
    bench: str
    metric: str
    measured: str
    target: str
    met: bool | None  # None: nothing to meet (a reported figure) or not decidable
    value: float | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.measured == "missing":
            return "missing"
        if self.met is None:
            return "reported" if not self.target or self.target == "report" else "n/a"
        return "met" if self.met else "NOT met"


def get(data: Any, path: str) -> Any:
    """`data["a"]["b"]` for path "a.b"; None when any step is missing."""
    for key in path.split("."):
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def section(data: Any, path: str) -> Mapping[str, Any]:
    """The mapping at `path`, or an empty one when it is missing or not a mapping."""
    value = get(data, path)
    return value if isinstance(value, Mapping) else {}


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def shown(value: float | None, unit: str) -> str:
    if value is None:
        return "missing"
    text = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{text} {unit}".strip()


def limit(
    bench: str, metric: str, value: Any, unit: str, op: str, bound: float, note: str = ""
) -> Row:
    """A row with a numeric target: `value op bound`, op one of <, <=, >=."""
    measured = number(value)
    met: bool | None = None
    if measured is not None:
        met = {
            "<": measured < bound,
            "<=": measured <= bound,
            ">=": measured >= bound,
        }[op]
    target = f"{op} {bound:g} {unit}".strip()
    return Row(bench, metric, shown(measured, unit), target, met, measured, note)


def report(bench: str, metric: str, value: Any, unit: str, note: str = "") -> Row:
    measured = number(value)
    return Row(bench, metric, shown(measured, unit), "report", None, measured, note)


def _db(results: Any, quick: bool) -> list[Row]:
    target = number(get(results, "target_p50_ms")) or 5.0
    rows = []
    timings = section(results, "timings")
    for name, timing in timings.items():
        if name != "platform_state_request":
            rows.append(
                limit("db", f"RLS query {name} p50", get(timing, "p50_ms"), "ms", "<", target)
            )
    if not timings:
        rows.append(limit("db", "RLS queries p50", None, "ms", "<", target))
    rows.append(
        report(
            "db",
            "platform-state (all queries, 1 tx) p50",
            get(results, "timings.platform_state_request.p50_ms"),
            "ms",
            "no statement cache, as behind the transaction pooler",
        )
    )
    rows.append(
        report(
            "db",
            "  same with a statement cache",
            get(results, "timings_statement_cache.platform_state_request.p50_ms"),
            "ms",
        )
    )
    plans = get(results, "plans")
    if isinstance(plans, Mapping) and plans:
        # Small tables (100 users) are rightly read by sequential scan.
        bad = [name for name, plan in plans.items() if get(plan, "seq_scans_on_large_tables")]
        measured = "none" if not bad else ", ".join(bad)
        rows.append(Row("db", "queries with seq scans on large tables", measured, "none", not bad))
    devices = number(get(results, "rows.devices"))
    if devices is not None:
        users = number(get(results, "rows.app_users")) or 0
        rows.append(report("db", "scale: devices", devices, "", f"{users:.0f} users"))
    return rows


def _functions(results: Any, quick: bool) -> list[Row]:
    if not isinstance(results, list) or not results:
        return [Row("functions", "results", "missing", "", None, note="expected a list")]
    rows = []
    for item in results:
        metric = str(get(item, "metric") or "?").rstrip()  # indent = sub-figure
        target = number(get(item, "target_ms"))
        if target is None:
            rows.append(report("functions", metric, get(item, "ms"), "ms"))
        else:
            rows.append(limit("functions", metric, get(item, "ms"), "ms", "<", target))
    return rows


def _ratio(numerator: Any, denominator: Any) -> float | None:
    top, bottom = number(numerator), number(denominator)
    if top is None or not bottom:
        return None
    return top / bottom


def _audio(results: Any, quick: bool) -> list[Row]:
    frame = section(results, "frame")
    soxr = section(results, "resample.22050->24000")
    rows = [
        report("audio", "per-frame CPU: decode+VAD+resample+encode", get(frame, "total_us"), "µs"),
        report("audio", "  streams per core", get(frame, "streams_per_core"), ""),
        report(
            "audio",
            "  with VAD batched over 32 streams",
            get(frame, "total_batched_32_us"),
            "µs",
            f"{get(frame, 'streams_per_core_batched_32')} streams per core",
        ),
        report(
            "audio", "batched VAD gain (batch 32 vs 1)", get(results, "vad.batched_gain_32"), "×"
        ),
        report(
            "audio",
            "soxr stream vs numpy.interp cost (22.05→24 kHz)",
            _ratio(get(soxr, "soxr_stream_us_per_chunk"), get(soxr, "numpy_interp_us_per_chunk")),
            "×",
            f"SNR {get(soxr, 'soxr_stream_snr_db')} vs {get(soxr, 'numpy_interp_snr_db')} dB",
        ),
        report(
            "audio",
            "Opus default complexity vs 10 encode cost",
            get(results, "opus.default_vs_10_cost"),
            "×",
            f"default {get(results, 'opus.default')}, "
            f"recommended {get(results, 'opus.recommended')}",
        ),
    ]
    if get(results, "stt") is not None:
        phrases = get(results, "stt.phrases")
        rows += [
            report(
                "audio", "local STT real-time factor (wall)", get(results, "stt.rtf_median"), ""
            ),
            report(
                "audio",
                "  CPU seconds per audio second",
                get(results, "stt.cpu_seconds_per_audio_second"),
                "",
            ),
            report("audio", f"  word error rate ({phrases} phrases)", get(results, "stt.wer"), ""),
        ]
    if get(results, "tts") is not None:
        for name, label in (("local-piper", "Piper"), ("local-espeak", "espeak-ng")):
            rows.append(
                report(
                    "audio",
                    f"local TTS time to first audio ({label})",
                    get(results, f"tts.{name}_short.ttfa_ms"),
                    "ms",
                )
            )
    return rows


def _runtime(results: Any, quick: bool) -> list[Row]:
    latency = section(results, "latency")
    memory = section(results, "memory")
    life = section(results, "lifetime")
    sessions = get(results, "concurrency.sustained_sessions")
    levels = get(results, "concurrency.levels")
    levels = levels if isinstance(levels, list) else []
    highest = max((number(get(level, "sessions")) or 0 for level in levels), default=0)
    concurrency = limit(
        "runtime",
        "pipeline floor: streaming devices on one core (p99 lag < 20 ms)",
        sessions,
        "",
        ">=",
        RUNTIME_SESSIONS,
        f"Node ~{NODE_STREAMING_DEVICES}",
    )
    if concurrency.met is False and highest < RUNTIME_SESSIONS:
        concurrency = replace(concurrency, met=None, note=f"run stopped at {highest:.0f}")
    rows = [
        report(
            "runtime",
            "pipeline floor: added latency p50",
            get(latency, "p50_ms"),
            "ms",
            f"Node {NODE_LATENCY_P50_MS:g} ms",
        ),
        limit(
            "runtime",
            "pipeline floor: added latency p99",
            get(latency, "p99_ms"),
            "ms",
            "<=",
            RUNTIME_P99_MS,
            f"Node {NODE_LATENCY_P99_MS:g} ms",
        ),
        concurrency,
        limit(
            "runtime",
            "pipeline floor: RSS per idle session",
            get(memory, "idle_kib_per_session"),
            "KiB",
            "<=",
            RUNTIME_IDLE_KIB,
            f"Node {NODE_IDLE_KIB:g} KiB",
        ),
        limit(
            "runtime",
            "pipeline floor: RSS per streaming session",
            get(memory, "streaming_kib_per_session"),
            "KiB",
            "<=",
            RUNTIME_STREAMING_KIB,
            f"Node {NODE_STREAMING_KIB:g} KiB",
        ),
    ]
    rows += _lifetime(life, quick)
    return _sockets(section(results, "sockets"), quick) + rows


def _sockets(results: Mapping[str, Any], quick: bool) -> list[Row]:
    """Issue 13: the runtime as shipped behind real-protocol provider fakes."""
    bench = "runtime (real sockets)"
    latency = section(results, "latency")
    memory = section(results, "memory")
    devices = get(results, "capacity.devices_per_core")
    levels = get(results, "capacity.levels")
    levels = levels if isinstance(levels, list) else []
    highest = max((number(get(level, "devices")) or 0 for level in levels), default=0)
    capacity = limit(
        bench,
        "real sockets: streaming devices per core (probe <= 1.25x)",
        devices,
        "",
        ">=",
        SOCKETS_DEVICES,
        f"Node {NODE_SOCKETS_DEVICES}",
    )
    if capacity.met is False and highest < SOCKETS_DEVICES:
        capacity = replace(capacity, met=None, note=f"run stopped at {highest:.0f}")
    return [
        report(
            bench,
            "real sockets: listen stop -> first Opus frame p50",
            get(latency, "first_audio_p50_ms"),
            "ms",
            f"Node {NODE_SOCKETS_P50_MS:g} ms",
        ),
        limit(
            bench,
            "real sockets: listen stop -> first Opus frame p99",
            get(latency, "first_audio_p99_ms"),
            "ms",
            "<=",
            SOCKETS_P99_MS,
            f"Node {NODE_SOCKETS_P99_MS:g} ms",
        ),
        report(
            bench,
            "real sockets: listen stop -> stt message p50",
            get(latency, "stt_p50_ms"),
            "ms",
            f"Node {NODE_SOCKETS_STT_MS:g} ms",
        ),
        capacity,
        limit(
            bench,
            "real sockets: RSS per streaming device",
            get(memory, "streaming_kib_per_device"),
            "KiB",
            "<=",
            SOCKETS_STREAMING_KIB,
            f"Node {NODE_SOCKETS_STREAMING_KIB:g} KiB",
        ),
        report(
            bench,
            "real sockets: RSS per idle device",
            get(memory, "idle_kib_per_device"),
            "KiB",
            f"Node {NODE_SOCKETS_IDLE_KIB:g} KiB",
        ),
        report(
            bench,
            "real sockets: provider STT audio per turn",
            get(results, "stt_audio_s_per_turn"),
            "s",
        ),
    ]


def _lifetime(life: Mapping[str, Any], quick: bool) -> list[Row]:
    count = number(get(life, "sessions"))
    before, after = number(get(life, "rss_before_mib")), number(get(life, "rss_after_mib"))
    first, last = number(get(life, "first_turn_ms")), number(get(life, "last_turn_ms"))
    full = count is not None and count >= LIFETIME_SESSIONS
    note = "" if full else f"only {count or 0:.0f} sessions (quick run)"
    rows = [
        limit(
            "runtime",
            "lifetime: sessions opened and closed",
            count,
            "",
            ">=",
            LIFETIME_SESSIONS,
            "Node: no audio after ~78",
        ),
    ]
    if quick and not full:
        rows[0] = replace(rows[0], met=None, note="quick run")
    if before is None or after is None:
        rows.append(Row("runtime", "lifetime: RSS flat", "missing", "", None))
    else:
        growth = (after - before) / before if before else 0.0
        rows.append(
            Row(
                "runtime",
                "lifetime: RSS before -> after",
                f"{before:g} -> {after:g} MiB",
                f"growth <= {LIFETIME_RSS_GROWTH:.0%}",
                (growth <= LIFETIME_RSS_GROWTH) if full else None,
                after - before,
                note,
            )
        )
    if first is None or last is None:
        rows.append(Row("runtime", "lifetime: last turn as fast as first", "missing", "", None))
    else:
        bound = first * LIFETIME_TURN_SLOWDOWN + LIFETIME_TURN_SLACK_MS
        rows.append(
            Row(
                "runtime",
                "lifetime: turn latency first -> last",
                f"{first:g} -> {last:g} ms",
                f"last <= {LIFETIME_TURN_SLOWDOWN:g}×first+{LIFETIME_TURN_SLACK_MS:g}",
                (last <= bound) if full else None,
                last,
                note,
            )
        )
    return rows


def _firmware(results: Any, quick: bool) -> list[Row]:
    goal = number(get(results, "goal_delta_p50_ms")) or 1.0
    rows = [
        report("firmware", "OTA answer today p50", get(results, "cases.today.p50_ms"), "ms"),
        report("firmware", "OTA answer today p99", get(results, "cases.today.p99_ms"), "ms"),
    ]
    for case, label in (
        ("no_rollout", "no rollout for the board"),
        ("offered", "offered a release"),
        ("updated", "reporting the new version"),
    ):
        rows.append(
            limit(
                "firmware",
                f"OTA answer, {label}: p50 - today",
                get(results, f"cases.{case}.delta_p50_ms"),
                "ms",
                "<",
                goal,
                f"p99 {shown(number(get(results, f'cases.{case}.p99_ms')), 'ms')}",
            )
        )
    rows.append(
        report(
            "firmware",
            "firmware_offer inside the server p50",
            get(results, "firmware_offer_sql.server_p50_ms"),
            "ms",
        )
    )
    return rows


# Issue 14's targets (speech-to-speech).
REALTIME_BRIDGE_P99_MS = 5.0
REALTIME_SESSIONS = 300
REALTIME_STREAMING_KIB = 256.0


def _realtime(results: Any, quick: bool) -> list[Row]:
    latency = section(results, "latency")
    capacity = section(results, "capacity")
    levels = get(capacity, "levels")
    levels = levels if isinstance(levels, list) else []
    highest = max((number(get(level, "sessions")) or 0 for level in levels), default=0)
    level = next((lv for lv in levels if get(lv, "sessions") == 100), levels[0] if levels else {})
    sessions = limit(
        "realtime",
        "S2S streaming devices on one core (probe <= 1.25x)",
        get(capacity, "sustained_sessions"),
        "",
        ">=",
        REALTIME_SESSIONS,
        f"~{get(capacity, 'projected_sessions_per_core')} per full core by CPU",
    )
    if sessions.met is False and highest < REALTIME_SESSIONS:
        sessions = replace(sessions, met=None, note=f"run stopped at {highest:.0f}")
    return [
        limit(
            "realtime",
            "provider audio delta -> first device frame p99 (in the runtime)",
            get(latency, "runtime_share_p99_ms"),
            "ms",
            "<=",
            REALTIME_BRIDGE_P99_MS,
            f"p50 {get(latency, 'runtime_share_p50_ms')} ms",
        ),
        report(
            "realtime",
            "provider delta -> device frame p99 (both sockets)",
            get(latency, "delta_to_first_frame_p99_ms"),
            "ms",
        ),
        report(
            "realtime",
            "listen stop -> commit at the provider p99",
            get(latency, "listen_stop_to_commit_p99_ms"),
            "ms",
        ),
        sessions,
        report(
            "realtime",
            "bytes/s to the provider per streaming session",
            get(level, "provider_bytes_per_s_per_session"),
            "B/s",
        ),
        report(
            "realtime",
            "messages/s to the provider per streaming session",
            get(level, "provider_messages_per_s_per_session"),
            "",
        ),
        limit(
            "realtime",
            "RSS per streaming S2S session",
            get(results, "memory.streaming_kib_per_session"),
            "KiB",
            "<=",
            REALTIME_STREAMING_KIB,
        ),
    ]


Summariser = Callable[[Any, bool], list[Row]]
SUMMARISERS: dict[str, Summariser] = {
    "db": _db,
    "functions": _functions,
    "firmware": _firmware,
    "audio": _audio,
    "runtime": _runtime,
    "realtime": _realtime,
}


def suite_row(total_s: float, target_s: float, *, quick: bool, complete: bool) -> Row:
    row = limit("suite", "whole suite wall time", total_s, "s", "<", target_s)
    if quick or not complete:
        return replace(row, met=None, note="quick or partial run")
    return row


def format_summary(
    rows: list[Row],
    *,
    outcomes_seconds: Mapping[str, float] | None = None,
    info: Mapping[str, Any] | None = None,
) -> str:
    lines = ["opendot bench all — summary"]
    if info:
        load = info.get("load_average_start"), info.get("load_average_end")
        lines.append(
            f"machine: {info.get('cpus')} CPUs {info.get('cpu_model') or ''}".rstrip()
            + f"; Python {info.get('python')}; load average {load[0]} -> {load[1]}"
        )
    if outcomes_seconds:
        lines.append(
            "bench wall times: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in outcomes_seconds.items())
        )
    header = ("issue", "metric", "measured", "target", "verdict", "note")
    table = [header] + [
        (
            f"#{ISSUES.get(r.bench, '?')} {r.bench}",
            r.metric,
            r.measured,
            r.target,
            r.verdict,
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines.append("")
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    met = sum(1 for r in rows if r.met is True)
    not_met = [r for r in rows if r.met is False]
    lines.append("")
    lines.append(f"targets met: {met}; not met: {len(not_met)}")
    for r in not_met:
        lines.append(
            f"  NOT met: #{ISSUES.get(r.bench, '?')} {r.metric}: {r.measured} ({r.target})"
        )
    return "\n".join(lines)
