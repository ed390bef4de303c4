"""`opendot bench audio`: what one voice stream costs in audio work, and how
the offline engines perform.

Sections (each figure is the median over repeated passes; the machine is noisy,
so comparisons are ratios taken within the same run):

- frame: per 60 ms frame CPU cost of uplink decode (16 kHz), VAD, downlink
  resample (Piper's 22.05 kHz to 24 kHz) and downlink encode (24 kHz, default
  complexity), their sum, and the streams one core could carry.
- opus: encode cost, packet size and reconstruction SNR for every complexity
  0-10 at 24 kHz / 60 ms, and the complexity this rule recommends: the cheapest
  one whose SNR is within 0.15 dB of complexity 10's (with the complexities that
  emit the very same packets, which cost the same).
- vad: Silero per-window cost alone (batch 1) and batched across N streams,
  plus the async batcher end to end with 32 concurrent sessions.
- resample: soxr ResampleStream against numpy.interp, cost per chunk and SNR
  against a whole-signal soxr VHQ reference.
- stt: faster-whisper tiny.en real-time factor and word error rate over 10 fixed
  phrases spoken by espeak-ng at bench time.
- tts: time to first audio and real-time factor for Piper and espeak-ng.

numpy, onnxruntime and the engines are imported inside the functions (this
module lives in `shared/`, which must not pull them in at import time).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

FRAME_MS = 60
UP_RATE = 16_000
DOWN_RATE = 24_000
PIPER_RATE = 22_050
PHRASES = (
    "what is the weather like today",
    "set a timer for ten minutes",
    "turn on the kitchen lights",
    "play some relaxing music",
    "what time is it in london",
    "remind me to call my mother tomorrow",
    "how far away is the moon",
    "tell me a short story about a dragon",
    "add milk and eggs to my shopping list",
    "what is the capital of france",
)
PARAGRAPH = (
    "The quick brown fox jumps over the lazy dog. It is a bright and sunny day, "
    "and the weather is lovely for a walk in the park. Shall we meet at the old "
    "bridge at ten o'clock, and then have lunch by the river? Please remember to "
    "bring a warm jacket, because the wind can be cold in the afternoon."
)
TTS_SHORT = "What is the weather like today?"
TTS_LONG = (
    "Today will be mostly sunny with a light breeze from the west. "
    "Temperatures reach about twenty degrees in the afternoon. "
    "In the evening, clouds move in and there may be a little rain after midnight."
)
_NUMBER_WORDS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
    "6": "six", "7": "seven", "8": "eight", "9": "nine", "10": "ten", "11": "eleven",
    "12": "twelve", "15": "fifteen", "20": "twenty", "30": "thirty",
}  # fmt: skip

# The complexity rule: the cheapest encode whose reconstruction is within this
# much of complexity 10's SNR.
SNR_TOLERANCE_DB = 0.15

Results = dict[str, dict[str, Any]]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument(
        "--no-models", action="store_true", help="skip the STT and TTS engines (codec/VAD only)"
    )


def run(args: argparse.Namespace) -> int:
    results = measure(
        quick=bool(getattr(args, "quick", False)), models=not getattr(args, "no_models", False)
    )
    print(format_table(results))
    path = getattr(args, "json", None)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def measure(*, quick: bool = False, models: bool = True) -> Results:
    passes = 3 if quick else 7
    results: Results = {}
    from runtime.audio.synthetic import speech_pcm

    up = speech_pcm(PARAGRAPH, UP_RATE)
    down_src = speech_pcm(PARAGRAPH, PIPER_RATE)
    _progress("opus")
    results["opus"] = _opus(speech_pcm(PARAGRAPH, DOWN_RATE), passes)
    _progress("vad")
    results["vad"] = _vad(up, passes)
    _progress("resample")
    results["resample"] = _resample(down_src, passes)
    _progress("frame")
    results["frame"] = _frame(up, down_src, passes, results)
    if models:
        _progress("stt")
        results["stt"] = _stt(quick)
        _progress("tts")
        results["tts"] = _tts(passes)
    return results


def _progress(section: str) -> None:
    print(f"bench audio: measuring {section} ...", file=sys.stderr, flush=True)


def _median_us(fn: Callable[[], int], passes: int) -> float:
    """Median over `passes` of (CPU seconds for one call of fn) / (items fn reports).

    CPU time of the whole process (all threads), not wall time: this is a cost,
    and on a shared machine wall time mostly measures the neighbours.
    """
    samples = []
    for _ in range(passes):
        started = time.process_time()
        count = fn()
        samples.append((time.process_time() - started) / max(count, 1) * 1e6)
    return statistics.median(samples)


def _frames(pcm: bytes, rate: int) -> list[bytes]:
    from runtime.audio.opus import PcmFramer

    framer = PcmFramer(rate, FRAME_MS)
    return framer.push(pcm) + framer.flush()


def _snr_db(reference: Any, signal: Any, max_lag: int = 0) -> float:
    """SNR of `signal` against `reference` (float arrays), at the best lag."""
    import numpy as np

    best = -99.0
    for lag in range(max_lag + 1):
        ref = reference[: len(reference) - lag] if lag else reference
        sig = signal[lag : lag + len(ref)]
        ref = ref[: len(sig)]
        noise = float(np.sum((ref - sig) ** 2))
        if noise > 0:
            best = max(best, 10 * float(np.log10(float(np.sum(ref**2)) / noise)))
    return best


def _opus(pcm24: bytes, passes: int) -> dict[str, Any]:
    import numpy as np

    from runtime.audio.opus import DEFAULT_COMPLEXITY, OpusDecoder, OpusEncoder

    frames = _frames(pcm24, DOWN_RATE)
    reference = np.frombuffer(b"".join(frames), "<i2").astype(np.float64)
    encoders = [OpusEncoder(DOWN_RATE, FRAME_MS, c) for c in range(11)]
    packets: dict[int, list[bytes]] = {}
    costs: dict[int, list[float]] = {c: [] for c in range(11)}
    # Interleaved passes, so a noisy neighbour slows every complexity alike.
    for _ in range(passes):
        for complexity, encoder in enumerate(encoders):
            started = time.process_time()
            packets[complexity] = [encoder.encode(f) for f in frames]
            costs[complexity].append((time.process_time() - started) / len(frames) * 1e6)
    table: dict[str, dict[str, float]] = {}
    for complexity, encoder in enumerate(encoders):
        encoder.close()
        with OpusDecoder(DOWN_RATE) as decoder:
            decoded = b"".join(decoder.decode(p) for p in packets[complexity])
        signal = np.frombuffer(decoded, "<i2").astype(np.float64)
        table[str(complexity)] = {
            "encode_us": round(statistics.median(costs[complexity]), 1),
            "bytes_per_packet": round(sum(map(len, packets[complexity])) / len(frames), 1),
            "snr_db": round(_snr_db(reference, signal, max_lag=400), 2),
            # Neighbouring complexities can emit identical packets (libopus maps
            # several to the same SILK settings): their cost differs only by noise.
            "same_packets_as": min(c for c in range(11) if packets[c] == packets[complexity]),
        }
    best_snr = table["10"]["snr_db"]
    recommended = min(
        (int(c) for c, row in table.items() if row["snr_db"] >= best_snr - SNR_TOLERANCE_DB),
        key=lambda c: float(table[str(c)]["encode_us"]),
    )
    group = sorted(
        int(c)
        for c, row in table.items()
        if row["same_packets_as"] == table[str(recommended)]["same_packets_as"]
    )
    return {
        "complexity": table,
        "recommended": "=".join(map(str, group)),
        "default": DEFAULT_COMPLEXITY,
        "default_vs_10_cost": round(
            table[str(DEFAULT_COMPLEXITY)]["encode_us"] / table["10"]["encode_us"], 2
        ),
    }


def _vad(pcm16: bytes, passes: int) -> dict[str, Any]:
    import asyncio

    import numpy as np

    from runtime.pipeline.interfaces import VadOptions
    from runtime.pipeline.vad import (
        CONTEXT_SAMPLES,
        WINDOW_SAMPLES,
        SileroVAD,
        silero_model,
    )

    started = time.perf_counter()
    model = silero_model()
    load_ms = (time.perf_counter() - started) * 1000
    samples = np.frombuffer(pcm16, "<i2").astype(np.float32) / 32768
    count = len(samples) // WINDOW_SAMPLES
    windows = np.stack(
        [
            samples[max(0, i * WINDOW_SAMPLES - CONTEXT_SAMPLES) : (i + 1) * WINDOW_SAMPLES]
            for i in range(1, count)
        ]
    )
    batches = (1, 8, 32, 128)
    costs: dict[int, list[float]] = {b: [] for b in batches}
    for _ in range(passes):  # interleaved, as for the codec
        for batch in batches:
            state = np.zeros((2, batch, 128), np.float32)
            started = time.process_time()
            for window in windows:
                _, state = model.run(np.repeat(window[None, :], batch, axis=0), state)
            costs[batch].append((time.process_time() - started) / (len(windows) * batch) * 1e6)
    per_window = {str(b): round(statistics.median(costs[b]), 1) for b in batches}

    async def sessions(n: int) -> tuple[float, float]:
        vad = SileroVAD()
        streams = [vad.open(VadOptions()) for _ in range(n)]

        async def feed(stream: Any) -> None:
            for start in range(0, len(pcm16), 1920):
                await stream.feed(pcm16[start : start + 1920])

        began = time.process_time()
        await asyncio.gather(*(feed(s) for s in streams))
        cpu = time.process_time() - began
        return cpu / vad.stats.windows * 1e6, vad.stats.windows / vad.stats.inferences

    async_1, _ = asyncio.run(sessions(1))
    async_32, mean_batch = asyncio.run(sessions(32))
    return {
        "model_load_ms": round(load_ms, 1),
        "per_window_us_by_batch": per_window,
        "batched_gain_32": round(per_window["1"] / per_window["32"], 2),
        "async_cpu_us_per_window_1_session": round(async_1, 1),
        "async_cpu_us_per_window_32_sessions": round(async_32, 1),
        "async_mean_batch_32_sessions": round(mean_batch, 1),
        "windows_per_frame": FRAME_MS / (WINDOW_SAMPLES * 1000 / UP_RATE),
    }


def _resample(pcm22: bytes, passes: int) -> dict[str, Any]:
    import numpy as np
    import soxr

    results: dict[str, Any] = {}
    signal = np.frombuffer(pcm22, "<i2")
    for in_rate, out_rate, source in (
        (PIPER_RATE, DOWN_RATE, signal),
        (DOWN_RATE, UP_RATE, soxr.resample(signal, PIPER_RATE, DOWN_RATE, "VHQ")),
    ):
        source = np.asarray(source, dtype="<i2")
        reference = soxr.resample(source.astype(np.float64), in_rate, out_rate, "VHQ")
        chunk = in_rate * FRAME_MS // 1000
        pieces = [source[i : i + chunk].tobytes() for i in range(0, len(source), chunk)]
        out: list[bytes] = []
        interp_out: list[Any] = []
        soxr_us = _median_us(partial(_soxr_pass, pieces, in_rate, out_rate, out), passes)
        interp_us = _median_us(partial(_interp_pass, pieces, in_rate, out_rate, interp_out), passes)
        soxr_signal = np.frombuffer(b"".join(out), "<i2").astype(np.float64)
        interp_signal = np.concatenate(interp_out)
        results[f"{in_rate}->{out_rate}"] = {
            "soxr_stream_us_per_chunk": round(soxr_us, 1),
            "soxr_stream_snr_db": round(_snr_db(reference, soxr_signal), 1),
            "numpy_interp_us_per_chunk": round(interp_us, 1),
            "numpy_interp_snr_db": round(_snr_db(reference, interp_signal), 1),
        }
    return results


def _soxr_pass(pieces: list[bytes], in_rate: int, out_rate: int, out: list[bytes]) -> int:
    from runtime.audio.resample import StreamResampler

    stream = StreamResampler(in_rate, out_rate)
    out[:] = [stream.process(p) for p in pieces] + [stream.flush()]
    return len(pieces)


def _interp_pass(pieces: list[bytes], in_rate: int, out_rate: int, out: list[Any]) -> int:
    """The baseline: linear interpolation chunk by chunk, no anti-alias filter."""
    import numpy as np

    out.clear()
    for piece in pieces:
        x = np.frombuffer(piece, "<i2").astype(np.float32)
        n = round(len(x) * out_rate / in_rate)
        out.append(np.interp(np.arange(n) * in_rate / out_rate, np.arange(len(x)), x))
    return len(pieces)


def _frame(up: bytes, down22: bytes, passes: int, results: Results) -> dict[str, Any]:
    from runtime.audio.opus import DEFAULT_COMPLEXITY, OpusDecoder, OpusEncoder

    up_frames = _frames(up, UP_RATE)
    with OpusEncoder(UP_RATE, FRAME_MS) as uplink_encoder:
        packets = [uplink_encoder.encode(f) for f in up_frames]
    decoder = OpusDecoder(UP_RATE)

    def decode_all() -> int:
        for packet in packets:
            decoder.decode(packet)
        return len(packets)

    decode_us = _median_us(decode_all, passes)
    decoder.close()
    vad_us = results["vad"]["per_window_us_by_batch"]["1"] * results["vad"]["windows_per_frame"]
    resample_us = results["resample"][f"{PIPER_RATE}->{DOWN_RATE}"]["soxr_stream_us_per_chunk"]
    encode_us = results["opus"]["complexity"][str(DEFAULT_COMPLEXITY)]["encode_us"]
    vad_batched_us = (
        results["vad"]["per_window_us_by_batch"]["32"] * results["vad"]["windows_per_frame"]
    )
    total = decode_us + vad_us + resample_us + encode_us
    total_batched = decode_us + vad_batched_us + resample_us + encode_us
    frames_per_s = 1000 / FRAME_MS
    return {
        "decode_16k_us": round(decode_us, 1),
        "vad_us": round(vad_us, 1),
        "vad_batched_32_us": round(vad_batched_us, 1),
        "resample_22k_24k_us": round(resample_us, 1),
        f"encode_24k_c{DEFAULT_COMPLEXITY}_us": round(encode_us, 1),
        "total_us": round(total, 1),
        "streams_per_core": int(1e6 / (total * frames_per_s)),
        "total_batched_32_us": round(total_batched, 1),
        "streams_per_core_batched_32": int(1e6 / (total_batched * frames_per_s)),
        "note": "both directions at once for every frame: the worst case per stream",
    }


def _normalise(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))
    return [_NUMBER_WORDS.get(w, w) for w in words]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference word count) after normalisation."""
    ref, hyp = _normalise(reference), _normalise(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1], len(ref)


def _stt(quick: bool) -> dict[str, Any]:
    from runtime.audio.synthetic import speech_pcm
    from runtime.providers.local_stt import whisper_engine

    started = time.perf_counter()
    engine = whisper_engine()
    load_s = time.perf_counter() - started
    engine.transcribe(speech_pcm("warm up", UP_RATE))
    errors = words = 0
    rtfs: list[float] = []
    latencies: list[float] = []
    mistakes: list[dict[str, str]] = []
    cpu_rtfs: list[float] = []
    for phrase in PHRASES[:3] if quick else PHRASES:
        audio = speech_pcm(phrase, UP_RATE, lead_ms=200, tail_ms=200)
        cpu_started = time.process_time()
        result = engine.transcribe(audio)
        cpu_rtfs.append((time.process_time() - cpu_started) / result.audio_s)
        wrong, count = word_errors(phrase, result.text)
        errors += wrong
        words += count
        rtfs.append(result.decode_s / result.audio_s)
        latencies.append(result.decode_s)
        if wrong:
            mistakes.append({"said": phrase, "heard": result.text})
    return {
        "model_load_s": round(load_s, 2),
        "phrases": 3 if quick else len(PHRASES),
        "wer": round(errors / words, 3),
        "rtf_median": round(statistics.median(rtfs), 3),
        "cpu_seconds_per_audio_second": round(statistics.median(cpu_rtfs), 3),
        "latency_median_s": round(statistics.median(latencies), 3),
        "mistakes": mistakes,
    }


def _tts(passes: int) -> dict[str, Any]:
    import asyncio

    from runtime.pipeline.interfaces import TtsOptions
    from runtime.providers.local_tts import EspeakTTS, PiperTTS, piper_voice

    started = time.perf_counter()
    voice = piper_voice()
    load_s = time.perf_counter() - started

    async def once(tts: Any, text: str) -> tuple[float, float, float, float]:
        began = time.perf_counter()
        cpu_began = time.process_time()
        first = 0.0
        audio_s = 0.0
        async for chunk in tts.stream(text, TtsOptions()):
            if not first:
                first = time.perf_counter() - began
            audio_s += len(chunk.pcm) / 2 / chunk.sample_rate
        return first, time.perf_counter() - began, audio_s, time.process_time() - cpu_began

    out: dict[str, Any] = {"piper_load_s": round(load_s, 2)}
    for tts in (PiperTTS(voice), EspeakTTS()):
        asyncio.run(once(tts, "Warm up."))
        for label, text in (("short", TTS_SHORT), ("long", TTS_LONG)):
            runs = [asyncio.run(once(tts, text)) for _ in range(passes)]
            out[f"{tts.name}_{label}"] = {
                "ttfa_ms": round(statistics.median(r[0] for r in runs) * 1000, 1),
                "rtf": round(statistics.median(r[1] / r[2] for r in runs), 4),
                "cpu_seconds_per_audio_second": round(
                    statistics.median(r[3] / r[2] for r in runs), 4
                ),
                "audio_s": round(runs[0][2], 2),
            }
    return out


def format_table(results: Results) -> str:
    lines = ["opendot bench audio", ""]
    for section, values in results.items():
        lines.append(f"[{section}]")
        lines += _flatten(values, "  ")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _flatten(values: Any, indent: str) -> list[str]:
    rows_of_scalars = all(
        isinstance(row, dict) and not any(isinstance(v, dict | list) for v in row.values())
        for row in values.values()
    )
    if values and rows_of_scalars:
        columns = list(dict.fromkeys(k for row in values.values() for k in row))
        width = max(len(str(k)) for k in values)
        lines = [indent + " " * width + "  " + "  ".join(f"{c:>14}" for c in columns)]
        for key, row in values.items():
            cells = "  ".join(f"{row.get(c, ''):>14}" for c in columns)
            lines.append(f"{indent}{key:<{width}}  {cells}")
        return lines
    lines = []
    for key, value in values.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines += _flatten(value, indent + "  ")
        elif isinstance(value, list):
            lines.append(f"{indent}{key}: {len(value)}")
            lines += [f"{indent}  - {json.dumps(item)}" for item in value]
        else:
            lines.append(f"{indent}{key}: {value}")
    return lines


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser()
    configure(parser)
    sys.exit(run(parser.parse_args()))
