"""Silero VAD on onnxruntime, with windows of all active sessions batched.

The ONNX model ships in the `silero-vad` wheel, but that package imports torch
when imported, so it is installed without dependencies and never imported:
`importlib.util.find_spec` finds its directory and we load `data/silero_vad.onnx`
ourselves. The model is loaded once per process (`silero_model()`).

Silero takes 512-sample windows (32 ms at 16 kHz) with the previous 64 samples
prepended as context, plus a recurrent state of shape [2, B, 128]. Since the
state is an input, windows from different streams can share one inference:
measured 188 us per window alone against about 60 us per stream in a batch of
32. `SileroVAD` therefore sends every window through a per-event-loop batcher:
whatever windows are pending when the inference thread is free run together
(onnxruntime releases the GIL, so the loop keeps serving sockets meanwhile);
a lone window runs inline on the loop, which is cheaper than the thread hop.

The endpointing decisions live in `runtime.pipeline.endpointing` (pure).
"""

from __future__ import annotations

import asyncio
import importlib.util
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

from runtime.once import once
from runtime.pipeline.endpointing import EndpointConfig, Endpointer
from runtime.pipeline.interfaces import UPLINK_RATE, VadEvent, VadOptions

WINDOW_SAMPLES = 512
CONTEXT_SAMPLES = 64
WINDOW_MS = WINDOW_SAMPLES * 1000 / UPLINK_RATE  # 32 ms
STATE_SHAPE = (2, 1, 128)
MODEL_FILE = "silero_vad.onnx"
DEFAULT_MAX_BATCH = 128


class VadModelMissing(RuntimeError):
    """The silero-vad wheel (installed with --no-deps) is not in this environment."""


def model_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "data" / MODEL_FILE
        if candidate.is_file():
            return candidate
    raise VadModelMissing(
        f"{MODEL_FILE} not found; install it with `pip install --no-deps silero-vad`"
    )


class SileroModel:
    """One onnxruntime session for the process. `run` is thread-safe."""

    def __init__(self, path: Path | None = None) -> None:
        options = onnxruntime.SessionOptions()
        # One thread: batching, not intra-op parallelism, is how VAD scales, and
        # the other core belongs to the event loop, STT and TTS.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(path or model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._sr = np.array(UPLINK_RATE, dtype=np.int64)

    def run(self, windows: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """windows [B, 576] float32 (context + window), states [2, B, 128] ->
        (speech probabilities [B], new states [2, B, 128])."""
        output, state = self._session.run(None, {"input": windows, "state": states, "sr": self._sr})
        return output[:, 0], state


@once
def silero_model() -> SileroModel:
    """The process-wide model, loaded on first use (about 30-50 ms)."""
    return SileroModel()


@once
def _inference_executor() -> ThreadPoolExecutor:
    # One inference thread: onnxruntime releases the GIL, so the event loop
    # keeps serving sockets while a batch runs, and windows queue up meanwhile.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="opendot-vad")


@dataclass
class BatchStats:
    inferences: int = 0
    windows: int = 0
    largest_batch: int = 0


_Pending = tuple[np.ndarray, np.ndarray, "asyncio.Future[tuple[float, np.ndarray]]"]


class _LoopBatcher:
    """Collects windows submitted on one event loop and runs them together.

    The first window to arrive makes its caller the leader: it yields once to
    the loop, so every session ready in the same iteration can join, then
    - alone, runs its window inline and returns (no task, no future: the
      common one-session case costs one loop iteration);
    - with company, hands the batch to a drain task that runs it on the
      inference thread and keeps draining whatever queued meanwhile. The task
      is independent of the leader, so cancelling one session's feed never
      strands the others' windows.
    """

    def __init__(self, model: SileroModel, max_batch: int, stats: BatchStats) -> None:
        self._model = model
        self._max_batch = max_batch
        self._stats = stats
        self._pending: list[_Pending] = []
        self._busy = False  # a leader or the drain task owns the model
        self._drainer: asyncio.Task[None] | None = None

    async def infer(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        loop = asyncio.get_running_loop()
        if self._busy:
            future: asyncio.Future[tuple[float, np.ndarray]] = loop.create_future()
            self._pending.append((window, state, future))
            return await future
        self._busy = True
        try:
            await asyncio.sleep(0)  # sessions ready in this iteration join the batch
        except asyncio.CancelledError:
            self._hand_over(loop, [])
            raise
        if not self._pending or self._max_batch == 1:
            try:
                probs, new_state = self._model.run(window[None, :], state)
            finally:
                self._hand_over(loop, [])
            self._count(1)
            return float(probs[0]), new_state
        own: asyncio.Future[tuple[float, np.ndarray]] = loop.create_future()
        self._hand_over(loop, [(window, state, own)])
        return await own

    def _hand_over(self, loop: asyncio.AbstractEventLoop, first: list[_Pending]) -> None:
        """Release the model, or give it to the drain task if windows are waiting."""
        if first or self._pending:
            self._drainer = loop.create_task(self._drain(loop, first))
        else:
            self._busy = False

    def _take(self, room: int) -> list[_Pending]:
        batch = [item for item in self._pending[:room] if not item[2].done()]
        del self._pending[:room]
        return batch

    async def _drain(self, loop: asyncio.AbstractEventLoop, first: list[_Pending]) -> None:
        try:
            batch = first + self._take(self._max_batch - len(first))
            while batch:
                await self._run(loop, batch)
                batch = self._take(self._max_batch)
        finally:
            self._busy = False
            self._drainer = None

    def _count(self, size: int) -> None:
        self._stats.inferences += 1
        self._stats.windows += size
        self._stats.largest_batch = max(self._stats.largest_batch, size)

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        windows = np.stack([item[0] for item in batch])
        states = np.concatenate([item[1] for item in batch], axis=1)
        try:
            if len(batch) == 1:
                # A lone window runs inline: ~200 us, less than the thread hop
                # costs in wake-ups and GIL hand-offs.
                probs, new_states = self._model.run(windows, states)
            else:
                # onnxruntime releases the GIL: the loop serves sockets meanwhile.
                probs, new_states = await loop.run_in_executor(
                    _inference_executor(), self._model.run, windows, states
                )
        except Exception as exc:  # an ORT failure fails these windows, not the drainer
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self._count(len(batch))
        for index, (*_, future) in enumerate(batch):
            if not future.done():
                future.set_result((float(probs[index]), new_states[:, index : index + 1].copy()))


class SileroVAD:
    """The VAD provider. One instance serves every session of the process."""

    name = "silero"

    def __init__(self, *, max_batch: int = DEFAULT_MAX_BATCH, model: SileroModel | None = None):
        self._model = model
        self.max_batch = max(1, max_batch)
        self.stats = BatchStats()
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBatcher] = (
            weakref.WeakKeyDictionary()
        )

    def _batcher(self) -> _LoopBatcher:
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            model = self._model or silero_model()
            batcher = self._batchers[loop] = _LoopBatcher(model, self.max_batch, self.stats)
        return batcher

    async def infer(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        return await self._batcher().infer(window, state)

    def open(self, options: VadOptions) -> SileroVadStream:
        return SileroVadStream(self, options)


class SileroVadStream:
    """One session's VAD: PCM16 16 kHz of any chunk size in, events out."""

    def __init__(self, vad: SileroVAD, options: VadOptions) -> None:
        self._vad = vad
        self._endpointer = Endpointer(EndpointConfig.from_options(options, WINDOW_MS))
        self.closed = False
        self.last_probability = 0.0
        self.reset()

    @property
    def in_speech(self) -> bool:
        return self._endpointer.in_speech

    @property
    def speech_ms(self) -> int:
        return self._endpointer.speech_ms

    def listen(self, listener: Callable[[list[VadEvent]], None] | None) -> None:
        """Silero decides within `feed`: nothing arrives later."""

    def reset(self) -> None:
        """Forget audio, model state and position: the next feed starts at 0 ms."""
        self._buffer = bytearray()
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._endpointer.reset()

    async def feed(self, pcm16: bytes) -> list[VadEvent]:
        """Events decided by the whole windows now available; a partial window
        waits for the next feed. Feeding a closed stream does nothing."""
        if self.closed:
            return []
        self._buffer += pcm16
        events: list[VadEvent] = []
        window_bytes = WINDOW_SAMPLES * 2
        while len(self._buffer) >= window_bytes and not self.closed:
            chunk = bytes(self._buffer[:window_bytes])  # a copy: the bytearray shrinks next
            del self._buffer[:window_bytes]
            window = np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768.0
            model_input = np.concatenate([self._context, window])
            probability, self._state = await self._vad.infer(model_input, self._state)
            self._context = window[-CONTEXT_SAMPLES:]
            self.last_probability = probability
            event = self._endpointer.push(probability)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> None:
        self.closed = True
        self._buffer.clear()
