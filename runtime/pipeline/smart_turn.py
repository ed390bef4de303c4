"""Smart Turn v3.2: does the utterance sound finished? One shared model per process.

The ONNX file (8.7 MB, BSD-2, int8) ships inside the `pipecat-ai` wheel, which
is installed without its dependencies and never imported: `find_spec` finds
the package directory (importing nothing) and we load
`audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx` ourselves, as the VAD
does with silero-vad. Nothing is downloaded at run time.

Model I/O, read from the file: `input_features` float32 [B, 80, 800] (the
log-mel of the last 8 s, `runtime.audio.logmel`) -> `logits` [B, 1], already
a sigmoid probability that the turn is complete.

Cost, measured here (`opendot bench turns`): 45-70 ms of one core per
judgement, and batching does not lower the cost per item (the encoder is
compute-bound: B=8 costs 8 times B=1), unlike Silero. So there is no batcher:
one inference thread serves the process, and `SmartTurn.judge` refuses work
(returns None) when `max_pending` judgements already wait, so a burst of
pauses degrades to the fixed silence instead of queueing seconds of model time.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime

from runtime.audio.logmel import fit_window, log_mel

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
WINDOW_S = 8
SAMPLE_RATE = 16_000
WINDOW_SAMPLES = WINDOW_S * SAMPLE_RATE
DEFAULT_MAX_PENDING = 4  # judgements waiting beyond the running one (about 0.25 s of model)


class SmartTurnMissing(RuntimeError):
    """The pipecat-ai wheel (installed with --no-deps) is not in this environment."""


def model_path() -> Path:
    spec = importlib.util.find_spec("pipecat")
    for location in list(spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "audio" / "turn" / "smart_turn" / "data" / MODEL_FILE
        if candidate.is_file():
            return candidate
    raise SmartTurnMissing(
        f"{MODEL_FILE} not found; install it with `pip install --no-deps 'pipecat-ai>=1.14,<2'`"
    )


class SmartTurnModel:
    """One onnxruntime session. `predict` is blocking and thread-safe."""

    def __init__(self, path: Path | None = None) -> None:
        options = onnxruntime.SessionOptions()
        # One thread: a second one measured no faster per item on this 2-core machine
        # and would take the event loop's core.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(path or model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        model_input = self._session.get_inputs()[0]
        self.input_name = model_input.name
        self.input_shape = tuple(model_input.shape)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """features [B, 80, 800] -> probability that each turn is complete, [B]."""
        (output,) = self._session.run(None, {self.input_name: features})
        return np.asarray(output, dtype=np.float32).reshape(-1)

    def probability(self, audio: np.ndarray) -> float:
        """float32 16 kHz audio (any length; the last 8 s count) -> P(complete)."""
        features = log_mel(fit_window(audio, WINDOW_SAMPLES))
        return float(self.predict(features[None])[0])


_model: SmartTurnModel | None = None
_model_lock = threading.Lock()


def smart_turn_model() -> SmartTurnModel:
    """The process-wide model, loaded on first use (about 0.1 s)."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                _model = SmartTurnModel()
    return _model


@dataclass
class JudgeStats:
    judged: int = 0
    skipped: int = 0  # refused under load: the caller fell back to the fixed silence
    busy_s: float = 0.0  # model time spent, features included
    recent: list[float] = field(default_factory=list)  # last judgements' model seconds


class SmartTurn:
    """The end-of-turn judge the sessions share: `await judge(audio)` -> P(complete)
    or None when the model is busy with `max_pending` others already waiting."""

    name = "smart-turn-v3.2"

    def __init__(
        self, *, model: SmartTurnModel | None = None, max_pending: int = DEFAULT_MAX_PENDING
    ) -> None:
        self._model = model
        self.max_pending = max_pending
        self.stats = JudgeStats()
        self._executor: ThreadPoolExecutor | None = None
        self._waiting = 0

    def _run(self, audio: np.ndarray) -> float:
        started = time.perf_counter()
        model = self._model or smart_turn_model()
        probability = model.probability(audio)
        spent = time.perf_counter() - started
        stats = self.stats
        stats.busy_s += spent
        stats.recent = [*stats.recent[-31:], spent]
        return probability

    async def judge(self, audio: np.ndarray) -> float | None:
        if self._waiting > self.max_pending:
            self.stats.skipped += 1
            return None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opendot-turn")
        self._waiting += 1
        try:
            # onnxruntime releases the GIL: the loop serves sockets while the model runs.
            probability = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._run, audio
            )
        finally:
            self._waiting -= 1
        self.stats.judged += 1
        return probability
