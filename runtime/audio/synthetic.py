"""Synthetic speech for tests, the device simulator and benchmarks.

Made by espeak-ng: the `espeak-ng` program when it is installed (the same tool
the research measurements used), else the in-process library the
`espeakng-loader` wheel bundles. Output is PCM16 mono at the rate asked for,
optionally padded with silence so a VAD sees a clean start and end.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from runtime.audio.containers import read_wav
from runtime.audio.resample import resample


def silence(ms: int, rate: int = 16_000) -> bytes:
    return bytes(2 * (rate * ms // 1000))


def speech_pcm(
    text: str,
    rate: int = 16_000,
    *,
    voice: str = "en-us",
    lead_ms: int = 0,
    tail_ms: int = 0,
) -> bytes:
    """`text` spoken by espeak-ng as PCM16 mono at `rate`, with silence around it."""
    program = shutil.which("espeak-ng")
    if program is not None:
        with tempfile.TemporaryDirectory(prefix="opendot-speech-") as tmp:
            path = Path(tmp) / "speech.wav"
            subprocess.run(  # noqa: S603 - fixed program, text passed as one argument
                [program, "-v", voice, "-w", str(path), "--", text],
                check=True,
                capture_output=True,
                timeout=30,
            )
            pcm, source_rate = read_wav(path)
    else:
        from runtime.audio.espeak import engine

        pcm = engine().synthesize(text, voice=voice)
        source_rate = engine().sample_rate
    if source_rate != rate:
        pcm = resample(pcm, source_rate, rate)
    return silence(lead_ms, rate) + pcm + silence(tail_ms, rate)
