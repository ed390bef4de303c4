"""Prometheus text exposition, written by hand.

The runtime needs counters, gauges and fixed-bucket histograms and nothing else;
`prometheus_client` would bring a process-global registry (an import-time
registry, which STYLE.md avoids) and more code than this module. One `Metrics`
object is created per app and passed explicitly.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

LabelKey = tuple[tuple[str, str], ...]

# Seconds. Fine at the low end: the interesting latencies are a few milliseconds.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# For frame processing and loop lag, where the question is "below 20 ms at p99?".
FINE_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.0125,
    0.015,
    0.02,
    0.025,
    0.05,
    0.1,
    0.5,
)


def _labels(labels: LabelKey) -> str:
    if not labels:
        return ""
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels
    )
    return "{" + body + "}"


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self.values: dict[LabelKey, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.values[key] = self.values.get(key, 0.0) + amount

    def get(self, **labels: str) -> float:
        return self.values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for key, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(key)} {_fmt(value)}"


class Gauge:
    """A gauge read at scrape time from a callable, so it can never drift."""

    def __init__(self, name: str, help_text: str, read: Callable[[], dict[LabelKey, float]]):
        self.name, self.help, self.read = name, help_text, read

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        for key, value in sorted(self.read().items()):
            yield f"{self.name}{_labels(key)} {_fmt(value)}"


class Histogram:
    def __init__(
        self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self.series: dict[LabelKey, list[float]] = {}  # bucket counts..., sum, count

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = [0.0] * (len(self.buckets) + 2)
        series[bisect.bisect_left(self.buckets, value)] += 1  # non-cumulative; summed on render
        series[-2] += value
        series[-1] += 1

    def count(self, **labels: str) -> int:
        series = self.series.get(tuple(sorted(labels.items())))
        return int(series[-1]) if series else 0

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for key, series in sorted(self.series.items()):
            running = 0.0
            for bound, n in zip(self.buckets, series, strict=False):
                running += n
                yield f"{self.name}_bucket{_labels((*key, ('le', _fmt(bound))))} {_fmt(running)}"
            yield f"{self.name}_bucket{_labels((*key, ('le', '+Inf')))} {_fmt(series[-1])}"
            yield f"{self.name}_sum{_labels(key)} {_fmt(series[-2])}"
            yield f"{self.name}_count{_labels(key)} {_fmt(series[-1])}"


class Metrics:
    """Every metric the runtime exports. Gauges are bound later by the app."""

    def __init__(self) -> None:
        self.sessions_opened = Counter("opendot_sessions_opened_total", "Sessions accepted.")
        self.sessions_rejected = Counter(
            "opendot_sessions_rejected_total", "Upgrades refused (auth, shutdown)."
        )
        self.turns = Counter("opendot_turns_total", "Turns by kind and outcome.")
        self.protocol_errors = Counter(
            "opendot_protocol_errors_total", "Malformed frames or messages."
        )
        self.frames_in = Counter("opendot_frames_in_total", "Uplink audio frames.")
        self.frames_out = Counter("opendot_frames_out_total", "Downlink audio frames.")
        self.records_dropped = Counter(
            "opendot_records_dropped_total",
            "Persistence records dropped (kind: event/turn/session when the buffer is full, "
            "poison when a record could not be kept or sent).",
        )
        self.records_flusher_errors = Counter(
            "opendot_records_flusher_errors_total",
            "Unexpected failures of the record flusher (it logs them and goes on).",
        )
        self.utterances_cut = Counter(
            "opendot_utterances_cut_total",
            "Utterances ended as a turn at RUNTIME_MAX_UTTERANCE_S (endless speech or noise).",
        )
        self.records_sent = Counter("opendot_records_sent_total", "Records the API accepted.")
        self.api_errors = Counter("opendot_api_errors_total", "Internal API call failures.")
        self.provider_errors = Counter("opendot_provider_errors_total", "Provider failures.")
        self.tool_calls = Counter("opendot_tool_calls_total", "Tool calls by source and outcome.")
        self.barge_ins = Counter(
            "opendot_barge_ins_total", "Speech over a reply, by verdict (confirm, dismiss)."
        )
        self.frame_lag = Histogram(
            "opendot_frame_processing_seconds",
            "Time from an uplink frame's arrival to the end of its processing.",
            FINE_BUCKETS,
        )
        self.stage_latency = Histogram(
            "opendot_stage_latency_seconds",
            "Turn latency marks measured from the end of speech, by stage.",
        )
        self.loop_lag = Histogram(
            "opendot_event_loop_lag_seconds",
            "How late a periodic timer fires: the wait any ready socket sees.",
            FINE_BUCKETS,
        )
        self.realtime_bridge = Histogram(
            "opendot_realtime_bridge_seconds",
            "Speech-to-speech bridge legs: end of the user's turn -> commit written to the "
            "provider (leg=commit); first provider audio -> first frame to the client "
            "(leg=first_frame).",
            FINE_BUCKETS,
        )
        self.gauges: list[Gauge] = []

    def add_gauge(self, gauge: Gauge) -> None:
        self.gauges.append(gauge)

    def render(self) -> str:
        lines: list[str] = []
        metrics: tuple[Counter | Histogram | Gauge, ...] = (
            self.sessions_opened,
            self.sessions_rejected,
            self.turns,
            self.protocol_errors,
            self.frames_in,
            self.frames_out,
            self.utterances_cut,
            self.records_dropped,
            self.records_flusher_errors,
            self.records_sent,
            self.api_errors,
            self.provider_errors,
            self.tool_calls,
            self.barge_ins,
            self.frame_lag,
            self.stage_latency,
            self.loop_lag,
            self.realtime_bridge,
            *self.gauges,
        )
        for metric in metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
