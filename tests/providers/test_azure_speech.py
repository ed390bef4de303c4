"""Azure Speech through its seam: a fake SDK drives the callbacks from its own thread."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable

import pytest

from runtime.pipeline.errors import ProviderAuthError, ProviderUnavailable
from runtime.pipeline.interfaces import PcmChunk, SttOptions, Transcript, TtsOptions
from runtime.providers.azure_speech import (
    AzureAuth,
    AzureSTT,
    AzureTTS,
    RecognitionEvent,
    SynthesisDone,
)

AUTH = AzureAuth(key="az-key-0123456789abcdef", region="westeurope")


class FakeRecognition:
    def __init__(self, seam: FakeSeam, on_event: RecognitionEvent) -> None:
        self.seam, self.on_event = seam, on_event
        self.audio = bytearray()
        self.stopped = False
        self._last: threading.Thread | None = None

    def write(self, pcm: bytes) -> None:
        self.audio += pcm
        script = self.seam.on_audio.get(len(self.audio))
        if script:
            self._later(script)

    def close_input(self) -> None:
        self._later(self.seam.on_close)

    def stop(self) -> None:
        self.stopped = True

    def _later(self, events: list[tuple[str, str, str | None]]) -> None:
        # The SDK calls back on its own threads, but in order: each batch waits for
        # the one before it (otherwise the end of input could overtake interims).
        previous = self._last

        def run() -> None:
            if previous is not None:
                previous.join()
            for event in events:
                self.on_event(*event)

        self._last = threading.Thread(target=run)
        self._last.start()


class FakeSeam:
    def __init__(self) -> None:
        self.on_audio: dict[int, list[tuple[str, str, str | None]]] = {}
        self.on_close: list[tuple[str, str, str | None]] = []
        self.recognitions: list[FakeRecognition] = []
        self.synth_chunks: list[bytes] = []
        self.synth_error: tuple[str, str] | None = None
        self.synth_stall = False
        self.cancelled = threading.Event()
        self.recognition_args: dict[str, object] = {}

    def start_recognition(
        self,
        auth: AzureAuth,
        *,
        language: str,
        sample_rate: int,
        segmentation_ms: int | None,
        on_event: RecognitionEvent,
    ) -> FakeRecognition:
        self.recognition_args = {
            "language": language,
            "rate": sample_rate,
            "segmentation": segmentation_ms,
        }
        recognition = FakeRecognition(self, on_event)
        self.recognitions.append(recognition)
        return recognition

    def start_synthesis(
        self,
        auth: AzureAuth,
        *,
        voice: str,
        text: str,
        on_chunk: Callable[[bytes], None],
        on_done: SynthesisDone,
    ) -> FakeSeam:
        def run() -> None:
            for chunk in self.synth_chunks:
                on_chunk(chunk)
            if self.synth_stall:
                return
            if self.synth_error:
                on_done(*self.synth_error)
            else:
                on_done(None, "")

        threading.Thread(target=run).start()
        return self

    def cancel(self) -> None:
        self.cancelled.set()


async def mic(chunks: int = 4) -> AsyncIterator[bytes]:
    for _ in range(chunks):
        yield b"\0\0" * 160
        await asyncio.sleep(0)


async def test_recognition_maps_interim_and_segmented_finals(unit: float) -> None:
    seam = FakeSeam()
    seam.on_audio[640] = [("recognizing", "what", None), ("recognizing", "what time", None)]
    seam.on_close = [("recognized", "What time is it?", None), ("stopped", "", None)]
    stt = AzureSTT(AUTH, seam=seam)
    options = SttOptions(language="en-GB", endpointing_ms=500)
    got = [t async for t in stt.stream(mic(), options)]
    assert got == [
        Transcript("what", False),
        Transcript("what time", False),
        Transcript("What time is it?", True, speech_final=True),
    ]
    assert seam.recognition_args == {"language": "en-GB", "rate": 16_000, "segmentation": 500}
    assert len(seam.recognitions[0].audio) == 4 * 320
    assert seam.recognitions[0].stopped


async def test_recognition_auth_failure_without_key() -> None:
    seam = FakeSeam()
    seam.on_close = [
        ("canceled", f"WebSocket upgrade failed: 401 key {AUTH.key}", "AuthenticationFailure")
    ]
    with pytest.raises(ProviderAuthError) as info:
        [t async for t in AzureSTT(AUTH, seam=seam).stream(mic(), SttOptions())]
    assert AUTH.key not in str(info.value)
    assert AUTH.key not in repr(AUTH)


async def test_connection_failure_is_unavailable() -> None:
    seam = FakeSeam()
    seam.on_close = [("canceled", "WS_OPEN_ERROR_UNDERLYING_IO_OPEN_FAILED", "ConnectionFailure")]
    with pytest.raises(ProviderUnavailable, match="ConnectionFailure"):
        [t async for t in AzureSTT(AUTH, seam=seam).stream(mic(), SttOptions())]


async def test_synthesis_streams_24k_pcm() -> None:
    seam = FakeSeam()
    seam.synth_chunks = [b"\1\0" * 10, b"\2\0" * 10]
    chunks = [c async for c in AzureTTS(AUTH, seam=seam).stream("Hello.", TtsOptions())]
    assert chunks == [PcmChunk(b"\1\0" * 10, 24_000), PcmChunk(b"\2\0" * 10, 24_000)]
    assert not seam.cancelled.is_set()


async def test_synthesis_error_maps() -> None:
    seam = FakeSeam()
    seam.synth_error = ("TooManyRequests", "quota")
    with pytest.raises(ProviderUnavailable, match="quota"):
        [c async for c in AzureTTS(AUTH, seam=seam).stream("Hello.", TtsOptions())]


async def test_closing_synthesis_early_cancels_it(unit: float) -> None:
    seam = FakeSeam()
    seam.synth_chunks = [b"\1\0"]
    seam.synth_stall = True
    stream = AzureTTS(AUTH, seam=seam).stream("Hello.", TtsOptions())
    assert await asyncio.wait_for(anext(stream), 5 * unit) == PcmChunk(b"\1\0", 24_000)
    await stream.aclose()  # type: ignore[attr-defined]
    assert seam.cancelled.is_set()


def test_sdk_is_imported_lazily() -> None:
    code = (
        "import sys, runtime.providers.azure_speech as a; "
        "a.AzureTTS(a.AzureAuth('k', 'r')); "
        "print('azure.cognitiveservices.speech' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
