"""Human-readable output of the simulator: timestamped lines and turn timelines."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from runtime.simulator.device import TurnResult

_LABELS = {
    "speech_end": "speech end",
    "stt": "stt",
    "first_sentence": "first sentence_start",
    "first_audio": "first audio",
    "tts_stop": "tts stop",
}


class Printer:
    """Prints `[  1.234s] line` relative to its creation; usable as a reporter."""

    def __init__(self, stream: TextIO | None = None, prefix: str = "") -> None:
        self.stream = stream or sys.stdout
        self.prefix = prefix
        self.start = time.perf_counter()

    def __call__(self, line: str) -> None:
        elapsed = time.perf_counter() - self.start
        print(f"[{elapsed:7.3f}s] {self.prefix}{line}", file=self.stream, flush=True)


def format_timeline(turn: TurnResult) -> str:
    """`speech end 0 ms -> stt +412 ms -> ...`; missing marks are shown as `-`."""
    parts = []
    for name, value in turn.timeline_ms().items():
        label = _LABELS[name]
        if value is None:
            parts.append(f"{label} -")
        elif name == "speech_end":
            parts.append(f"{label} 0 ms")
        else:
            parts.append(f"{label} {value:+.0f} ms")
    return " -> ".join(parts)


def format_turn(turn: TurnResult) -> list[str]:
    lines = [
        f"turn {turn.index} ({turn.mode}):",
        f'  you said : "{turn.transcript}"',
        f'  reply    : "{turn.reply_text}"',
        f"  audio    : {turn.audio_frames} Opus frames, "
        f"{len(turn.reply_pcm) / 2 / turn.reply_rate:.2f} s decoded",
        f"  timeline : {format_timeline(turn)}",
    ]
    if turn.aborted:
        lines.append(f"  aborted  : yes; audio frames after tts stop: {turn.frames_after_stop}")
    if turn.closed is not None:
        lines.append(f"  socket   : closed by the runtime ({turn.closed[0]} {turn.closed[1]})")
    for alert in turn.alerts:
        lines.append(f"  alert    : {alert.status}: {alert.message}")
    return lines
