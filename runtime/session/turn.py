"""The provider-facing half of a turn, shared by device and browser sessions.

`Utterance` feeds one utterance's audio to the STT stream and collects its
transcript. `Reply` streams the LLM answer through the `<chunk>` parser and
starts a TTS job per chunk as soon as it closes (jobs run concurrently, a few at
a time); the session plays the jobs in order. When every provider of a stage
fails, the reply speaks `APOLOGY_TEXT` instead of leaving silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from runtime.pipeline.errors import ProviderError
from runtime.pipeline.interfaces import (
    LLM,
    STT,
    TTS,
    LlmRequest,
    PcmChunk,
    Pipeline,
    SttOptions,
    Transcript,
    TtsOptions,
)
from runtime.pipeline.served import Served, context_for
from runtime.protocol.chunks import ChunkParser
from runtime.protocol.text import clean_text
from runtime.session.timeline import RawSpan, Span, build_timeline
from runtime.tools.box import ToolBox
from runtime.tools.loop import Filler, run_tool_loop

log = logging.getLogger("opendot.runtime.turn")

T = TypeVar("T")


async def until_none(queue: asyncio.Queue[T | None]) -> AsyncIterator[T]:
    """What a producer puts on `queue`, in order, until it puts None (its end mark)."""
    while (item := await queue.get()) is not None:
        yield item


APOLOGY_TEXT = "Sorry, I could not answer that. Please try again."
MAX_PARALLEL_TTS = 3


class TurnMarks:
    """Latency marks of one turn on the loop clock, convertible to wall-clock ISO.

    `NAMES` are the marks stored as columns (latency percentiles are computed from
    them); the others (`llm_request`, `llm_done`, `tts_first_pcm`, `tts_done`) and
    the per-sentence synthesis spans only shape the turn's `timeline()`.
    """

    NAMES = ("speech_end", "stt_final", "llm_first_token", "first_chunk", "first_audio", "ended")

    def __init__(self, served: Served | None = None) -> None:
        loop = asyncio.get_running_loop()
        # Which provider served each stage; the utterance's, when it had one (its STT).
        self.served = served if served is not None else Served()
        self._clock = loop.time
        self._mono0 = loop.time()
        self._wall0 = time.time()
        self.values: dict[str, float] = {}
        self.chunks: list[RawSpan] = []

    def now(self) -> float:
        return self._clock()

    def mark(self, name: str, *, overwrite: bool = False) -> None:
        if overwrite or name not in self.values:
            self.values[name] = self._clock()

    def chunk(self, index: int, start: float, pcm_bytes: int, *, apology: bool = False) -> None:
        """One sentence's synthesis, from `start` until now."""
        label = f"Apology chunk {index}" if apology else f"TTS chunk {index}"
        self.chunks.append(
            RawSpan(f"tts-chunk-{index}", "tts_chunk", label, start, self._clock(), pcm_bytes)
        )

    def timeline(self) -> list[Span]:
        return build_timeline(self.values, self.chunks, self.served.providers)

    def since_speech_end(self, name: str) -> float | None:
        start, end = self.values.get("speech_end"), self.values.get(name)
        return None if start is None or end is None else end - start

    def iso(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        return datetime.fromtimestamp(self._wall0 + value - self._mono0, UTC).isoformat()

    def to_record(self) -> dict[str, str | None]:
        def camel(name: str) -> str:
            head, *rest = name.split("_")
            return head + "".join(p.title() for p in rest) + "At"

        return {camel(name): self.iso(name) for name in self.NAMES}

    def ms_since_start(self, name: str, start: str = "speech_end") -> float | None:
        a, b = self.values.get(start), self.values.get(name)
        return None if a is None or b is None else round((b - a) * 1000, 1)


class Utterance:
    """One utterance's STT stream: audio in through `feed`, transcripts out.

    Bounded: at most `max_bytes` of audio are taken (the runtime's
    RUNTIME_MAX_UTTERANCE_S). `feed` says False once the bound is reached, and the
    session ends the utterance there as a turn, whatever ends utterances otherwise
    (its VAD, the provider's endpointing, `listen stop` in manual mode), since a
    device that streams without end would otherwise be heard, and held, forever.
    The queue to the STT task can therefore never hold more than the bound either.
    """

    def __init__(
        self,
        stt: STT,
        options: SttOptions,
        *,
        on_transcript: Callable[[Transcript], None] | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.on_transcript = on_transcript  # the session may re-route it (a barge-in)
        self._max_bytes = max_bytes
        self.finals: list[str] = []
        self.interim = ""
        self.ended = False
        self.full = False
        self.audio_bytes = 0
        self.error: ProviderError | None = None
        self.provider_endpoint = asyncio.Event()
        self.served = Served()  # the STT stage's provider and fallbacks, for the turn
        self.task = asyncio.create_task(
            self._run(stt, options), name="stt", context=context_for(self.served)
        )

    @property
    def queued(self) -> int:
        """Chunks waiting for the STT task."""
        return self._queue.qsize()

    def feed(self, pcm: bytes) -> bool:
        """Take `pcm`; False when the utterance is at its bound (the rest is not taken)."""
        if self.ended or self.full:
            return not self.full
        if self._max_bytes is not None and self.audio_bytes + len(pcm) >= self._max_bytes:
            pcm = pcm[: self._max_bytes - self.audio_bytes]
            self.full = True
        if pcm:
            self._queue.put_nowait(pcm)
            self.audio_bytes += len(pcm)
        return not self.full

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self._queue.put_nowait(None)

    async def _run(self, stt: STT, options: SttOptions) -> None:
        try:
            async for raw in stt.stream(until_none(self._queue), options):
                # Provider text is outside input too (a base_url may point anywhere): it
                # goes to the device, the LLM and the records, so it is cleaned here.
                transcript = replace(raw, text=clean_text(raw.text))
                if transcript.is_final:
                    if transcript.text.strip():
                        self.finals.append(transcript.text.strip())
                    self.interim = ""
                else:
                    self.interim = transcript.text
                if self.on_transcript is not None:
                    self.on_transcript(transcript)
                if transcript.speech_final:
                    self.provider_endpoint.set()
        except ProviderError as exc:
            self.error = exc
            log.warning("speech recognition failed: %s", exc)
        finally:
            self.ended = True
            self.provider_endpoint.set()

    @property
    def text(self) -> str:
        return " ".join(self.finals).strip()

    async def result(self, timeout_s: float) -> str:
        """End the input (if not yet) and wait for the final transcript."""
        self.end()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=timeout_s)
        except TimeoutError:
            self.error = self.error or ProviderError("stt", "no final transcript in time")
            self.task.cancel()
        return self.text or (self.interim.strip() if self.error is None else "")

    async def cancel(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@dataclass(eq=False, slots=True)
class SpeechJob:
    index: int
    text: str
    apology: bool = False
    queue: asyncio.Queue[PcmChunk | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    failed: bool = False

    def audio(self) -> AsyncIterator[PcmChunk]:
        return until_none(self.queue)

    async def pcm(self) -> tuple[bytes, int]:
        """All of the job's audio at one rate (the first chunk's)."""
        parts: list[bytes] = []
        rate = 0
        async for chunk in self.audio():
            rate = rate or chunk.sample_rate
            parts.append(chunk.pcm)
        return b"".join(parts), rate


class Reply:
    """LLM stream -> `<chunk>` parser -> concurrent TTS jobs, consumed in order."""

    def __init__(
        self,
        pipeline: Pipeline,
        request: LlmRequest | None,
        tts_options: TtsOptions,
        marks: TurnMarks,
        *,
        fixed_text: str | None = None,
        on_provider_error: Callable[[str, ProviderError], None] | None = None,
        max_parallel: int = MAX_PARALLEL_TTS,
        tools: ToolBox | None = None,
        filler: str | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._tts_options = tts_options
        self._marks = marks
        self._on_error = on_provider_error
        self._tools = tools
        self._filler = filler
        self._sem = asyncio.Semaphore(max_parallel)
        self._jobs: asyncio.Queue[SpeechJob | None] = asyncio.Queue()
        self._all: list[SpeechJob] = []
        self.texts: list[str] = []
        self.llm_error: ProviderError | None = None
        self.tts_failed = False
        self._producer = asyncio.create_task(self._produce(request, fixed_text), name="llm")

    @classmethod
    def fixed(
        cls, pipeline: Pipeline, text: str, tts_options: TtsOptions, marks: TurnMarks
    ) -> Reply:
        """A reply that only speaks `text` (the apology when STT failed)."""
        return cls(pipeline, None, tts_options, marks, fixed_text=text)

    @classmethod
    def spoken(cls, tts: TTS, text: str, tts_options: TtsOptions, marks: TurnMarks) -> Reply:
        """A reply that only speaks `text` with `tts` (a speech-to-speech apology, which
        has no pipeline: only the TTS seam is used when there is no request)."""
        pipeline = Pipeline(vad=None, stt=cast(STT, None), llm=cast(LLM, None), tts=tts)
        return cls(pipeline, None, tts_options, marks, fixed_text=text)

    @property
    def text(self) -> str:
        return " ".join(t for t in self.texts if t)

    def _start(self, text: str, apology: bool = False, *, remembered: bool = True) -> None:
        job = SpeechJob(index=len(self._all), text=text, apology=apology)
        job.task = asyncio.create_task(self._synth(job), name="tts")
        self._all.append(job)
        if not apology and remembered:
            self.texts.append(text)
        self._marks.mark("first_chunk")
        self._jobs.put_nowait(job)

    async def _produce(self, request: LlmRequest | None, fixed_text: str | None) -> None:
        parser = ChunkParser()
        try:
            if request is None:
                self._start(fixed_text or APOLOGY_TEXT, apology=True)
                return
            self._marks.mark("llm_request")
            loop = run_tool_loop(self._pipeline.llm, request, self._tools, filler=self._filler)
            async for delta in loop:
                if isinstance(delta, Filler):
                    # Spoken while tools run, not part of the answer the memory keeps.
                    self._start(delta.text, remembered=False)
                    continue
                self._marks.mark("llm_first_token")
                for text in parser.feed(clean_text(delta)):
                    self._start(text)
            self._marks.mark("llm_done")
            for text in parser.finish():
                self._start(text)
            if not self.texts:
                raise ProviderError(self._pipeline.llm.name, "the reply had no spoken text")
        except ProviderError as exc:
            self.llm_error = exc
            if self._on_error is not None:
                self._on_error("llm", exc)
            self._start(APOLOGY_TEXT, apology=True)
        finally:
            self._jobs.put_nowait(None)

    async def _synth(self, job: SpeechJob) -> None:
        marks = self._marks
        try:
            async with self._sem:
                started, produced = marks.now(), 0
                for text in (job.text, APOLOGY_TEXT):
                    try:
                        async for chunk in self._pipeline.tts.stream(text, self._tts_options):
                            if chunk.pcm:
                                if not produced:
                                    marks.mark("tts_first_pcm")
                                produced += len(chunk.pcm)
                                job.queue.put_nowait(chunk)
                        break
                    except ProviderError as exc:
                        if self._on_error is not None:
                            self._on_error("tts", exc)
                        if produced or job.apology or text == APOLOGY_TEXT:
                            job.failed = self.tts_failed = True
                            break
                        # Every TTS provider failed for this chunk: apologise in its place.
                        job.apology = True
                marks.chunk(job.index, started, produced, apology=job.apology)
                marks.mark("tts_done", overwrite=True)
        finally:
            job.queue.put_nowait(None)

    def jobs(self) -> AsyncIterator[SpeechJob]:
        return until_none(self._jobs)

    async def aclose(self) -> None:
        tasks: list[asyncio.Task[Any]] = [self._producer]
        tasks.extend(job.task for job in self._all if job.task is not None)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
