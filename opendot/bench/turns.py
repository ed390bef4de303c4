"""`opendot bench turns`: turn taking, a fixed silence against the semantic end of turn.

Method. The labelled set (`turn_set`, synthesised here by Piper and espeak-ng)
runs through the runtime's own components, in audio time, 60 ms frames as a
Dot sends them:

(a) end of turn. Each complete and paused clip goes through the Silero stream
    with a fixed endpointing silence, and through the `SemanticVadStream`
    (Silero + Smart Turn v3.2 + the `TurnEnd` machine) for a grid of short
    silence / long silence / threshold. The wait is the audio position where
    the turn ended minus where the speech ended, plus, when a model verdict
    ended it, that judgement's measured wall time (the model runs here in
    this process, one thread, as in the runtime). A false cut-off is a turn
    that ended inside a clip's mid-sentence pause. The runtime adds about
    3 ms on top (`opendot bench runtime`), the same for both.
(b) barge-in. Each clip over a playing reply goes through the Silero stream
    and, from the VAD's speech start, the `BargeIn` machine, fed the VAD's
    speech length per frame and the partial transcripts local Whisper makes
    on the runtime's schedule (a decode per 500 ms of new audio, one in
    flight); a transcript becomes available at its decode's start plus the
    decode's measured wall time. Caught: true interruptions confirmed;
    wrongly: backchannels, noises and echo confirmed; onset -> stop: the
    person's first sample to the confirmation (the runtime then flushes and
    sends `tts stop` at once).
(c) cost: Smart Turn per judgement (batch 1, and per item at batch 4 / 8),
    the features alone, and the RSS the model adds to a process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FRAME = 960  # 60 ms at 16 kHz, a Dot's uplink frame
FIXED_MS = (300, 500, 700, 1000, 1200, 1500)
SHORT_MS = (100, 200, 300)
LONG_MS = (1000, 1500, 2000)
THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
BARGE_MIN_MS = (300, 500, 700)
# The agent defaults (shared.agent_config), chosen from this bench's grid.
DEFAULT = {"short_ms": 100, "long_ms": 1500, "threshold": 0.9, "barge_in_min_ms": 500}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="a smaller grid (smoke test)")


def run(args: argparse.Namespace) -> int:
    results = asyncio.run(measure(quick=args.quick))
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def _progress(stage: str) -> None:
    print(f"bench turns: {stage} ...", file=sys.stderr, flush=True)


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def _q(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# --- (c) cost -------------------------------------------------------------------------------


def model_cost() -> dict[str, Any]:
    from runtime.audio.logmel import fit_window, log_mel
    from runtime.pipeline.smart_turn import WINDOW_SAMPLES, SmartTurnModel

    before = _rss_kib()
    model = SmartTurnModel()
    audio = np.random.default_rng(3).normal(0, 0.1, 3 * 16_000).astype(np.float32)
    model.probability(audio)
    added = _rss_kib() - before
    features = log_mel(fit_window(audio, WINDOW_SAMPLES))

    def timed(fn: Any, repeat: int) -> float:
        values = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            values.append(time.perf_counter() - started)
        return statistics.median(values) * 1000

    per_batch = {}
    for batch in (1, 4, 8):
        stacked = np.repeat(features[None], batch, axis=0)
        per_batch[batch] = timed(lambda s=stacked: model.predict(s), 7) / batch
    return {
        "model_rss_mib": round(added / 1024, 1),
        "features_ms": round(timed(lambda: log_mel(fit_window(audio, WINDOW_SAMPLES)), 15), 2),
        "judgement_ms": round(timed(lambda: model.probability(audio), 15), 1),
        "per_item_ms_by_batch": {str(b): round(v, 1) for b, v in per_batch.items()},
    }


# --- (a) end of turn ------------------------------------------------------------------------


class _BenchJudge:
    """The real model, run inline, its answers cached per (clip, audio length) so a grid
    of thresholds costs one judgement per distinct pause; records each wall time."""

    name = "smart-turn-bench"

    def __init__(self) -> None:
        from runtime.pipeline.smart_turn import smart_turn_model

        self.model = smart_turn_model()
        self.clip = ""
        self.cache: dict[tuple[str, int], tuple[float, float]] = {}
        self.last_ms = 0.0
        self.walls: list[float] = []

    async def judge(self, audio: np.ndarray) -> float | None:
        key = (self.clip, len(audio))
        if key not in self.cache:
            started = time.perf_counter()
            probability = self.model.probability(audio)
            wall = (time.perf_counter() - started) * 1000
            self.walls.append(wall)
            self.cache[key] = (probability, wall)
        probability, self.last_ms = self.cache[key]
        return probability


async def _end_of_turn(clip: Any, stream: Any, judge: _BenchJudge | None) -> dict[str, Any]:
    """Feed one clip; the turn ends recorded as (ms where decided, model ms added)."""
    from runtime.pipeline.interfaces import VadEventKind

    ends: list[tuple[float, float]] = []
    position = 0

    def late(events: list[Any]) -> None:
        for event in events:
            if event.kind is VadEventKind.SPEECH_END:
                ends.append((position / 16, judge.last_ms if judge else 0.0))

    stream.listen(late)
    pcm = _pcm16(clip.pcm)
    for start in range(0, len(pcm), 2 * FRAME):
        chunk = pcm[start : start + 2 * FRAME]
        position += len(chunk) // 2
        for event in await stream.feed(chunk):
            if event.kind is VadEventKind.SPEECH_END:
                ends.append((position / 16, 0.0))
        await asyncio.sleep(0)  # a judgement task runs (inline) before the next frame
        await asyncio.sleep(0)
    stream.close()
    speech_end_ms = clip.speech_end / 16
    cut = False
    if clip.pause is not None:
        pause_start, pause_end = clip.pause[0] / 16, clip.pause[1] / 16
        cut = any(pause_start <= at < pause_end + 200 for at, _ in ends)
    final = [at + extra - speech_end_ms for at, extra in ends if at >= speech_end_ms]
    return {"cut": cut, "wait_ms": final[0] if final else None}


def _summary(rows: list[dict[str, Any]], clips: list[Any]) -> dict[str, Any]:
    waits = [r["wait_ms"] for r in rows if r["wait_ms"] is not None]
    complete = [r["wait_ms"] for r, c in zip(rows, clips, strict=True) if c.kind == "complete"]
    paused = [r for r, c in zip(rows, clips, strict=True) if c.kind == "paused"]
    return {
        "wait_p50_ms": round(statistics.median(waits), 1) if waits else None,
        "wait_p90_ms": round(_q(waits, 0.9), 1) if waits else None,
        "complete_wait_p50_ms": round(statistics.median([w for w in complete if w is not None]), 1),
        "false_cutoff_pct": round(100 * sum(r["cut"] for r in paused) / max(1, len(paused)), 1),
        "never_ended": sum(r["wait_ms"] is None for r in rows),
    }


async def end_of_turn(clips: list[Any], *, quick: bool) -> dict[str, Any]:
    from runtime.pipeline.interfaces import VadOptions
    from runtime.pipeline.semantic_vad import SemanticVAD
    from runtime.pipeline.turn_end import TurnEndConfig
    from runtime.pipeline.vad import SileroVAD

    silero = SileroVAD()
    fixed = {}
    for ms in FIXED_MS:
        rows = [
            await _end_of_turn(c, silero.open(VadOptions(endpointing_ms=ms)), None) for c in clips
        ]
        fixed[str(ms)] = _summary(rows, clips)
    judge = _BenchJudge()
    vad = SemanticVAD(silero, judge)  # type: ignore[arg-type]
    grid = [(s, lg, t) for s in SHORT_MS for lg in LONG_MS for t in THRESHOLDS]
    if quick:
        grid = [(200, 1500, t) for t in (0.5, 0.7)]
    semantic = {}
    for short, long_, threshold in grid:
        config = TurnEndConfig(short, long_, threshold, fallback_ms=max(short, 300))
        rows = []
        for clip in clips:
            judge.clip = clip.text + str(clip.style)
            rows.append(await _end_of_turn(clip, vad.open(VadOptions(semantic=config)), judge))
        semantic[f"{short}/{long_}/{threshold:g}"] = _summary(rows, clips)
    return {
        "clips": {
            "complete": sum(c.kind == "complete" for c in clips),
            "paused": sum(c.kind == "paused" for c in clips),
        },
        "fixed": fixed,
        "semantic": semantic,
        "judgements": len(judge.walls),
        "judgement_wall_p50_ms": round(statistics.median(judge.walls), 1),
    }


def compare(eot: Mapping[str, Any], default: str) -> dict[str, Any]:
    """The default semantic setting against the shortest fixed silence that cuts
    people off no more often (the fair baseline), and against the 300 ms default."""
    sem = eot["semantic"][default]
    fair = [
        (int(ms), row)
        for ms, row in eot["fixed"].items()
        if row["false_cutoff_pct"] <= sem["false_cutoff_pct"]
    ]
    out: dict[str, Any] = {"semantic": default, **{f"semantic_{k}": v for k, v in sem.items()}}
    if fair:
        ms, row = min(fair)
        out.update(
            fixed_ms=ms,
            fixed_wait_p50_ms=row["wait_p50_ms"],
            fixed_wait_p90_ms=row["wait_p90_ms"],
            fixed_false_cutoff_pct=row["false_cutoff_pct"],
            median_wait_ratio=round(sem["wait_p50_ms"] / row["wait_p50_ms"], 3),
        )
    return out


# --- (b) barge-in ---------------------------------------------------------------------------


class _Transcriber:
    """Local Whisper on the runtime's partial schedule, in audio time."""

    def __init__(self) -> None:
        from runtime.providers.local_stt import LOCAL_PARTIAL_POLICY, whisper_engine

        self.engine = whisper_engine()
        self.policy = LOCAL_PARTIAL_POLICY
        self.cache: dict[bytes, tuple[str, float]] = {}

    def decode(self, pcm: bytes) -> tuple[str, float]:
        if pcm not in self.cache:
            started = time.perf_counter()
            text = self.engine.transcribe(pcm).text
            self.cache[pcm] = (text, (time.perf_counter() - started) * 1000)
        return self.cache[pcm]


async def _barge(clip: Any, reply_text: str, min_ms: int, stt: _Transcriber) -> dict[str, Any]:
    from runtime.pipeline.interfaces import VadOptions
    from runtime.pipeline.vad import SileroVAD
    from runtime.session.barge_in import BargeIn, BargeInConfig, EchoGate, Verdict, rms

    stream = SileroVAD().open(VadOptions(endpointing_ms=200))
    pcm = _pcm16(clip.pcm)
    preroll: list[bytes] = []
    audio = bytearray()  # the candidate's audio (preroll included)
    barge: BargeIn | None = None
    pending: list[tuple[float, str]] = []  # (ms when available, text)
    busy_until = 0.0
    decoded_at = 0
    decisions: list[tuple[float, Any]] = []
    gate = EchoGate()
    began = 0
    per_ms = 32
    for start in range(0, len(pcm), 2 * FRAME):
        chunk = pcm[start : start + 2 * FRAME]
        now = (start + len(chunk)) / per_ms
        await stream.feed(chunk)
        loud = gate.frame(rms(chunk))
        if barge is None:
            # A candidate begins when the VAD hears speech standing above the echo.
            if stream.speech_ms > 0 and loud:
                barge = BargeIn(BargeInConfig(min_ms=min_ms), [reply_text])
                audio = bytearray(b"".join(preroll[-5:]))
                began = stream.speech_ms
            preroll.append(chunk)
            if barge is None:
                continue
        audio += chunk
        policy = stt.policy
        due = (
            len(audio) >= policy.min_ms * per_ms
            and len(audio) - decoded_at >= policy.interval_ms * per_ms
        )
        if due and now >= busy_until:
            text, wall = stt.decode(bytes(audio))
            decoded_at, busy_until = len(audio), now + wall
            pending.append((busy_until, text))
        for at, text in [p for p in pending if p[0] <= now]:
            pending.remove((at, text))
            if (decision := barge.transcript(text)) is not None:
                decisions.append((now, decision))
        spoken = max(1, stream.speech_ms - began) if stream.speech_ms else 0
        if (decision := barge.heard(spoken)) is not None:
            decisions.append((now, decision))
        if barge.decision is not None:
            if barge.decision.verdict is Verdict.CONFIRM:
                break
            barge, decoded_at, pending, busy_until = None, 0, [], 0.0  # dismissed: listen on
        elif barge.stopped:
            text, wall = stt.decode(bytes(audio))  # the final transcript of the candidate
            if (decision := barge.final(text)) is not None:
                decisions.append((now + wall, decision))
                if decision.verdict is Verdict.CONFIRM:
                    break
                barge, decoded_at, pending, busy_until = None, 0, [], 0.0
    stream.close()
    confirmed = [(at, d) for at, d in decisions if d.verdict is Verdict.CONFIRM]
    dismissed = [d.reason for _, d in decisions if d.verdict is Verdict.DISMISS]
    return {
        "kind": clip.kind,
        "text": clip.text,
        "confirmed": bool(confirmed),
        "onset_to_stop_ms": round(confirmed[0][0] - clip.onset / 16, 1) if confirmed else None,
        "reason": confirmed[0][1].reason
        if confirmed
        else (dismissed[-1] if dismissed else "no speech"),
        "heard": confirmed[0][1].text if confirmed else "",
    }


async def barge_in(quick: bool) -> dict[str, Any]:
    from opendot.bench.turn_set import barge_in_clips

    reply_text, _reply, clips = barge_in_clips()
    stt = _Transcriber()
    out: dict[str, Any] = {
        "clips": {
            k: sum(c.kind == k for c in clips)
            for k in ("interruption", "backchannel", "noise", "echo")
        }
    }
    for min_ms in (500,) if quick else BARGE_MIN_MS:
        rows = [await _barge(c, reply_text, min_ms, stt) for c in clips]
        true = [r for r in rows if r["kind"] == "interruption"]
        false = [r for r in rows if r["kind"] != "interruption"]
        stops = [r["onset_to_stop_ms"] for r in true if r["confirmed"]]
        backs = [r for r in false if r["kind"] == "backchannel"]
        out[str(min_ms)] = {
            "caught_pct": round(100 * sum(r["confirmed"] for r in true) / len(true), 1),
            "wrongly_interrupted_pct": round(
                100 * sum(r["confirmed"] for r in false) / len(false), 1
            ),
            "backchannels_ignored": f"{sum(not r['confirmed'] for r in backs)}/{len(backs)}",
            "onset_to_stop_p50_ms": round(statistics.median(stops), 1) if stops else None,
            "onset_to_stop_p90_ms": round(_q(stops, 0.9), 1) if stops else None,
            "rows": rows,
        }
    return out


# --- the whole bench ------------------------------------------------------------------------


async def measure(*, quick: bool = False) -> dict[str, Any]:
    from opendot.bench.turn_set import end_of_turn_clips

    results: dict[str, Any] = {"load_average": {"start": [round(x, 2) for x in os.getloadavg()]}}
    _progress("model cost")
    results["cost"] = model_cost()
    _progress("synthesising the labelled set")
    clips = end_of_turn_clips()
    if quick:
        clips = clips[:6] + [c for c in clips if c.kind == "paused"][:6]
    _progress("end of turn")
    eot = await end_of_turn(clips, quick=quick)
    results["end_of_turn"] = eot
    default = f"{DEFAULT['short_ms']}/{DEFAULT['long_ms']}/{DEFAULT['threshold']:g}"
    results["comparison"] = compare(eot, default)
    _progress("barge-in")
    results["barge_in"] = await barge_in(quick)
    results["load_average"]["end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def format_table(results: Mapping[str, Any]) -> str:
    eot, cmp_ = results["end_of_turn"], results["comparison"]
    lines = [
        f"labelled set: {eot['clips']['complete']} complete, {eot['clips']['paused']} with a "
        "mid-sentence pause (Piper, three styles)",
        "",
        "end of turn             wait p50 / p90 (ms)   complete p50   false cut-offs   never ended",
    ]
    for ms, row in eot["fixed"].items():
        lines.append(
            f"  fixed {ms:>5} ms       {row['wait_p50_ms']:>7} / {row['wait_p90_ms']:<7}"
            f"       {row['complete_wait_p50_ms']:>7}      {row['false_cutoff_pct']:>5} %"
            f"          {row['never_ended']}"
        )
    for key, row in eot["semantic"].items():
        lines.append(
            f"  semantic {key:<12}  {row['wait_p50_ms']:>7} / {row['wait_p90_ms']:<7}"
            f"       {row['complete_wait_p50_ms']:>7}      {row['false_cutoff_pct']:>5} %"
            f"          {row['never_ended']}"
        )
    lines.append("")
    if "fixed_ms" in cmp_:
        lines.append(
            f"default semantic {cmp_['semantic']} vs the shortest fixed silence with no more "
            f"false cut-offs ({cmp_['fixed_ms']} ms): median wait "
            f"{cmp_['semantic_wait_p50_ms']} vs {cmp_['fixed_wait_p50_ms']} ms "
            f"(ratio {cmp_['median_wait_ratio']}), false cut-offs "
            f"{cmp_['semantic_false_cutoff_pct']} % vs {cmp_['fixed_false_cutoff_pct']} %"
        )
    lines.append("")
    lines.append("barge-in (over a playing reply, echo -30 dB; echo alone at -30 and -20 dB)")
    for key, row in results["barge_in"].items():
        if key == "clips":
            continue
        lines.append(
            f"  min {key} ms: caught {row['caught_pct']} %, wrongly interrupted "
            f"{row['wrongly_interrupted_pct']} %, backchannels ignored "
            f"{row['backchannels_ignored']}, onset -> stop p50 {row['onset_to_stop_p50_ms']} "
            f"/ p90 {row['onset_to_stop_p90_ms']} ms"
        )
    cost = results["cost"]
    lines.append("")
    lines.append(
        f"Smart Turn: {cost['judgement_ms']} ms per judgement (features {cost['features_ms']} ms), "
        f"per item by batch {cost['per_item_ms_by_batch']}, RSS +{cost['model_rss_mib']} MiB"
    )
    load = results["load_average"]
    lines.append(f"load average at start {load['start']}, at end {load['end']}")
    return "\n".join(lines)
