"""OpenAI speech: transcription of a buffered utterance, and streamed PCM TTS.

- STT: OpenAI's transcription endpoint takes a whole file, so the utterance is
  buffered until the input ends (the runtime's VAD ends it) and sent as WAV.
  One final transcript comes back; this provider has no endpointing of its own.
  While the utterance grows, it is re-sent at a bounded rate (one request per
  second of new audio, one in flight, a process-wide cap) for live partials.
- TTS: `/audio/speech` with `response_format: pcm` streams raw PCM16 at 24 kHz;
  each network piece is yielded at once (an odd trailing byte waits for its pair),
  so playback can start on the first piece.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator

from runtime.audio.containers import wav_bytes
from runtime.audio.pcm import whole_samples
from runtime.pipeline.errors import ProviderBadResponse
from runtime.pipeline.interfaces import PcmChunk, SttOptions, Transcript, TtsOptions
from runtime.providers.endpoint import Endpoint
from runtime.providers.http import read_all, stream_body
from runtime.providers.partials import PartialBudget, PartialPolicy, interim

DEFAULT_STT_MODEL = "gpt-4o-mini-transcribe"
DEFAULT_TTS_MODEL = "gpt-4o-mini-tts"
DEFAULT_VOICE = "alloy"
TTS_RATE = 24_000
MAX_UTTERANCE_BYTES = 16_000 * 2 * 120  # two minutes of 16 kHz PCM16; the API caps at 25 MB
# Each partial is a billed request for the whole utterance so far: one per second
# of new audio, and at most 32 in flight across the process.
OPENAI_PARTIAL_POLICY = PartialPolicy(interval_ms=1000, min_ms=500)
OPENAI_PARTIALS = PartialBudget(limit=32)


def _headers(endpoint: Endpoint) -> dict[str, str]:
    if endpoint.key is None:
        return {}
    return {"Authorization": f"Bearer {endpoint.key.reveal()}"}


def _language(tag: str) -> str | None:
    """ISO-639-1 from a BCP-47 tag ("en-US" -> "en"); None lets the model detect it."""
    base = tag.split("-", 1)[0].strip().lower()
    return base if len(base) == 2 else None


class OpenAISTT:
    """`model` is this provider's own: the runtime's SttOptions.model names the stage's
    model, which may belong to another vendor when this provider is a fallback."""

    def __init__(
        self,
        endpoint: Endpoint,
        model: str = DEFAULT_STT_MODEL,
        *,
        partials: PartialPolicy | None = OPENAI_PARTIAL_POLICY,
        budget: PartialBudget = OPENAI_PARTIALS,
    ) -> None:
        self.endpoint = endpoint
        self.model = model or DEFAULT_STT_MODEL
        self.name = endpoint.provider
        self._partials = partials
        self._budget = budget

    async def _transcribe(self, pcm: bytes, options: SttOptions) -> str:
        # The provider's own model: options.model is the stage's, maybe another vendor's.
        data = {"model": self.model, "response_format": "json"}
        language = _language(options.language)
        if language:
            data["language"] = language
        client = self.endpoint.http()
        request = client.build_request(
            "POST",
            f"{self.endpoint.base_url}/audio/transcriptions",
            headers=_headers(self.endpoint),
            data=data,
            files={"file": ("utterance.wav", wav_bytes(pcm, options.sample_rate), "audio/wav")},
        )
        body = await read_all(client, request, self.endpoint.policy())
        try:
            return str(json.loads(body)["text"]).strip()
        except (ValueError, KeyError, TypeError):
            raise ProviderBadResponse(self.name, "the transcription answer has no text") from None

    async def stream(
        self, audio: AsyncIterable[bytes], options: SttOptions
    ) -> AsyncIterator[Transcript]:
        await self.endpoint.ensure_vetted()
        pcm = bytearray()
        if self._partials is not None and options.sample_rate == 16_000:

            async def decode(sofar: bytes) -> str:
                return await self._transcribe(sofar, options)

            async for partial in interim(
                audio,
                pcm,
                decode=decode,
                policy=self._partials,
                budget=self._budget,
                limit_bytes=MAX_UTTERANCE_BYTES,
            ):
                yield partial
        else:
            async for chunk in audio:
                if len(pcm) < MAX_UTTERANCE_BYTES:
                    pcm += chunk  # keep the start; an endless utterance is a stuck VAD
        del pcm[MAX_UTTERANCE_BYTES:]
        if not pcm:
            return
        # Not speech_final: the runtime's VAD, not this provider, ended the utterance.
        yield Transcript(text=await self._transcribe(bytes(pcm), options), is_final=True)


class OpenAITTS:
    def __init__(
        self, endpoint: Endpoint, model: str = DEFAULT_TTS_MODEL, voice: str = DEFAULT_VOICE
    ) -> None:
        self.endpoint = endpoint
        self.model = model or DEFAULT_TTS_MODEL
        self.voice = voice or DEFAULT_VOICE
        self.name = endpoint.provider

    async def stream(self, text: str, options: TtsOptions) -> AsyncIterator[PcmChunk]:
        if not text.strip():
            return
        await self.endpoint.ensure_vetted()
        body = {
            "model": self.model,
            "voice": self.voice,
            "input": text,
            "response_format": "pcm",
        }
        client = self.endpoint.http()
        request = client.build_request(
            "POST",
            f"{self.endpoint.base_url}/audio/speech",
            headers={**_headers(self.endpoint), "Content-Type": "application/json"},
            content=json.dumps(body).encode(),
        )
        pieces = stream_body(client, request, self.endpoint.policy())
        try:
            async for pcm in whole_samples(pieces):
                yield PcmChunk(pcm=pcm, sample_rate=TTS_RATE)
        finally:
            await pieces.aclose()
