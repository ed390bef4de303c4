"""Azure Speech: streaming recognition through a push stream, synthesis to raw 24 kHz PCM.

Every use of the SDK sits behind `AzureSeam`, a small class with two methods
that start a recognition or a synthesis and report back through plain
callbacks. `SdkSeam` is the real one and imports `azure.cognitiveservices.speech`
inside its methods (the SDK costs ~150 ms and native libraries on first use,
and is an optional extra); tests plug in a fake seam.

The SDK calls back on its own threads; the adapters hop onto the event loop
with `call_soon_threadsafe` and consume an asyncio queue, so cancellation is
ordinary asyncio cancellation plus a `stop()` on the seam handle.

Azure's segmentation is a provider-side endpointer: each `recognized` phrase is
reported as `speech_final`, with the silence timeout taken from the agent's
endpointing setting.

A stage's `base_url` is an Azure Speech endpoint (`wss://…` or `https://…`, e.g. a
custom domain or a container) used instead of the region. The SDK opens its own
connections, so the runtime's connect-time address check cannot sit under them:
the endpoint is resolved and checked (`netguard.vet_url`) before each use instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.pipeline.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from runtime.pipeline.interfaces import PcmChunk, SttOptions, Transcript, TtsOptions
from runtime.providers.http import redact
from runtime.providers.netguard import vet_url

NAME = "azure"
DEFAULT_VOICE = "en-US-AvaMultilingualNeural"
TTS_RATE = 24_000

# (kind, text, error code) from the SDK thread; kind: recognizing | recognized | canceled | stopped
RecognitionEvent = Callable[[str, str, str | None], None]
# (error code or None, details) when a synthesis ends
SynthesisDone = Callable[[str | None, str], None]


class RecognitionHandle(Protocol):
    def write(self, pcm: bytes) -> None: ...
    def close_input(self) -> None: ...
    def stop(self) -> None: ...


class SynthesisHandle(Protocol):
    def cancel(self) -> None: ...


@dataclass(frozen=True)
class AzureAuth:
    key: str
    region: str
    endpoint: str | None = None  # instead of the region: the stage's base_url
    allow_private: bool = False

    def __repr__(self) -> str:
        return f"AzureAuth(region={self.region!r}, endpoint={self.endpoint!r})"

    async def vet(self) -> None:
        """Refuse an endpoint whose host is not public (before every use: the SDK
        connects by itself, so this is the check that sees the address)."""
        if self.endpoint:
            await vet_url(
                self.endpoint,
                allow_private=self.allow_private,
                provider=NAME,
                what="azure base_url",
                schemes=("https", "wss"),
            )

    def speech_config(self, sdk: Any) -> Any:
        if self.endpoint:
            return sdk.SpeechConfig(subscription=self.key, endpoint=self.endpoint)
        return sdk.SpeechConfig(subscription=self.key, region=self.region)


class AzureSeam(Protocol):
    def start_recognition(
        self,
        auth: AzureAuth,
        *,
        language: str,
        sample_rate: int,
        segmentation_ms: int | None,
        on_event: RecognitionEvent,
    ) -> RecognitionHandle: ...

    def start_synthesis(
        self,
        auth: AzureAuth,
        *,
        voice: str,
        text: str,
        on_chunk: Callable[[bytes], None],
        on_done: SynthesisDone,
    ) -> SynthesisHandle: ...


def map_error(code: str | None, details: str, secrets: tuple[str, ...]) -> ProviderError:
    """An SDK cancellation code (CancellationErrorCode name) as our exception."""
    text = redact(f"{code or 'error'}: {details}".strip(), secrets)
    name = (code or "").rsplit(".", 1)[-1]
    if name in ("AuthenticationFailure", "Forbidden"):
        return ProviderAuthError(NAME, text)
    if name == "BadRequest":
        return ProviderBadRequest(NAME, text)
    if name == "ServiceTimeout":
        return ProviderTimeout(NAME, text)
    return ProviderUnavailable(NAME, text)  # ConnectionFailure, TooManyRequests, ServiceError...


class AzureSTT:
    def __init__(
        self,
        auth: AzureAuth,
        *,
        seam: AzureSeam | None = None,
        timeout_s: float = 30.0,
        segmentation_ms: int | None = None,
    ) -> None:
        self.name = NAME
        self._auth = auth
        self._seam = seam or SdkSeam()
        self._timeout_s = timeout_s
        self._segmentation_ms = segmentation_ms

    async def stream(
        self, audio: AsyncIterable[bytes], options: SttOptions
    ) -> AsyncIterator[Transcript]:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, str, str | None]] = asyncio.Queue()

        def on_event(kind: str, text: str, code: str | None) -> None:
            loop.call_soon_threadsafe(events.put_nowait, (kind, text, code))

        segmentation = options.endpointing_ms or self._segmentation_ms
        await self._auth.vet()
        handle = await asyncio.to_thread(
            self._seam.start_recognition,
            self._auth,
            language=options.language or "en-US",
            sample_rate=options.sample_rate,
            segmentation_ms=segmentation,
            on_event=on_event,
        )
        input_done = asyncio.Event()

        async def feed() -> None:
            try:
                async for chunk in audio:
                    handle.write(chunk)  # the push stream buffers; no blocking I/O here
            finally:
                handle.close_input()
                input_done.set()

        feeder = asyncio.create_task(feed(), name="azure-feed")
        try:
            while True:
                if input_done.is_set():
                    try:
                        async with asyncio.timeout(self._timeout_s):
                            kind, text, code = await events.get()
                    except TimeoutError:
                        raise ProviderTimeout(
                            NAME, "no final result after the audio ended"
                        ) from None
                else:
                    kind, text, code = await events.get()
                if kind == "recognizing" and text:
                    yield Transcript(text=text, is_final=False)
                elif kind == "recognized" and text:
                    yield Transcript(text=text, is_final=True, speech_final=True)
                elif kind == "canceled":
                    raise map_error(code, text, (self._auth.key,))
                elif kind == "stopped":
                    return
        finally:
            feeder.cancel()
            with contextlib.suppress(BaseException):
                await feeder
            await asyncio.to_thread(handle.stop)


class AzureTTS:
    def __init__(
        self,
        auth: AzureAuth,
        *,
        voice: str = DEFAULT_VOICE,
        seam: AzureSeam | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.name = NAME
        self.voice = voice or DEFAULT_VOICE
        self._auth = auth
        self._seam = seam or SdkSeam()
        self._timeout_s = timeout_s

    async def stream(self, text: str, options: TtsOptions) -> AsyncIterator[PcmChunk]:
        if not text.strip():
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | tuple[str | None, str]] = asyncio.Queue()

        def on_chunk(pcm: bytes) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, bytes(pcm))

        def on_done(code: str | None, details: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (code, details))

        await self._auth.vet()
        handle = await asyncio.to_thread(
            self._seam.start_synthesis,
            self._auth,
            voice=self.voice,
            text=text,
            on_chunk=on_chunk,
            on_done=on_done,
        )
        finished = False
        try:
            while True:
                try:
                    async with asyncio.timeout(self._timeout_s):
                        item = await queue.get()
                except TimeoutError:
                    raise ProviderTimeout(NAME, "synthesis stalled") from None
                if isinstance(item, bytes):
                    if item:
                        yield PcmChunk(pcm=item, sample_rate=TTS_RATE)
                    continue
                finished = True
                code, details = item
                if code is not None:
                    raise map_error(code, details, (self._auth.key,))
                return
        finally:
            if not finished:
                await asyncio.to_thread(handle.cancel)


# --- the real SDK, behind the seam --------------------------------------------------------------


class _SdkRecognition:
    def __init__(self, recognizer: Any, push: Any) -> None:
        self._recognizer = recognizer
        self._push = push
        self._closed = False

    def write(self, pcm: bytes) -> None:
        self._push.write(pcm)

    def close_input(self) -> None:
        if not self._closed:
            self._closed = True
            self._push.close()

    def stop(self) -> None:
        self.close_input()
        self._recognizer.stop_continuous_recognition_async().get()


class _SdkSynthesis:
    def __init__(self, synthesizer: Any, future: Any) -> None:
        self._synthesizer = synthesizer
        self._future = future  # keeps the request alive until it completes

    def cancel(self) -> None:
        self._synthesizer.stop_speaking_async().get()


class SdkSeam:
    """The Azure Speech SDK, imported on first use."""

    @staticmethod
    def _sdk() -> Any:
        try:
            import azure.cognitiveservices.speech as speechsdk
        except ImportError as exc:  # pragma: no cover - the `azure` extra is not installed
            raise ProviderUnavailable(
                NAME, "the Azure Speech SDK is not installed (pip install 'opendot[azure]')"
            ) from exc
        return speechsdk

    def start_recognition(
        self,
        auth: AzureAuth,
        *,
        language: str,
        sample_rate: int,
        segmentation_ms: int | None,
        on_event: RecognitionEvent,
    ) -> RecognitionHandle:  # pragma: no cover - needs the Azure service
        sdk = self._sdk()
        config = auth.speech_config(sdk)
        config.speech_recognition_language = language
        if segmentation_ms:
            config.set_property(
                sdk.PropertyId.Speech_SegmentationSilenceTimeoutMs, str(segmentation_ms)
            )
        fmt = sdk.audio.AudioStreamFormat(
            samples_per_second=sample_rate, bits_per_sample=16, channels=1
        )
        push = sdk.audio.PushAudioInputStream(stream_format=fmt)
        recognizer = sdk.SpeechRecognizer(
            speech_config=config, audio_config=sdk.audio.AudioConfig(stream=push)
        )

        def recognized(evt: Any) -> None:
            if evt.result.reason == sdk.ResultReason.RecognizedSpeech:
                on_event("recognized", evt.result.text, None)

        def canceled(evt: Any) -> None:
            details = evt.cancellation_details
            if details.reason == sdk.CancellationReason.Error:
                on_event("canceled", details.error_details or "", str(details.code))
            else:
                on_event("stopped", "", None)

        recognizer.recognizing.connect(lambda evt: on_event("recognizing", evt.result.text, None))
        recognizer.recognized.connect(recognized)
        recognizer.canceled.connect(canceled)
        recognizer.session_stopped.connect(lambda evt: on_event("stopped", "", None))
        recognizer.start_continuous_recognition_async().get()
        return _SdkRecognition(recognizer, push)

    def start_synthesis(
        self,
        auth: AzureAuth,
        *,
        voice: str,
        text: str,
        on_chunk: Callable[[bytes], None],
        on_done: SynthesisDone,
    ) -> SynthesisHandle:  # pragma: no cover - needs the Azure service
        sdk = self._sdk()
        config = auth.speech_config(sdk)
        config.speech_synthesis_voice_name = voice
        config.set_speech_synthesis_output_format(
            sdk.SpeechSynthesisOutputFormat.Raw24Khz16BitMonoPcm
        )
        synthesizer = sdk.SpeechSynthesizer(speech_config=config, audio_config=None)
        synthesizer.synthesizing.connect(lambda evt: on_chunk(evt.result.audio_data))
        synthesizer.synthesis_completed.connect(lambda evt: on_done(None, ""))

        def canceled(evt: Any) -> None:
            details = evt.result.cancellation_details
            on_done(str(details.error_code or details.reason), details.error_details or "")

        synthesizer.synthesis_canceled.connect(canceled)
        future = synthesizer.speak_text_async(text)
        return _SdkSynthesis(synthesizer, future)
