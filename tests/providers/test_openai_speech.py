"""OpenAI transcription (buffered utterance as WAV) and streamed PCM TTS, over respx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from pydantic import SecretStr

from runtime.audio.containers import parse_wav
from runtime.pipeline.errors import ConfigRefused, ProviderBadResponse
from runtime.pipeline.interfaces import PcmChunk, SttOptions, Transcript, TtsOptions
from runtime.providers.endpoint import Endpoint
from runtime.providers.keys import ProviderKey
from runtime.providers.openai_speech import OpenAISTT, OpenAITTS

BASE = "https://api.openai.com/v1"
KEY = "sk-speech-0123456789abcdef"


async def public(host: str, port: int) -> list[str]:
    return ["162.159.140.245"]


def endpoint(base: str = BASE) -> Endpoint:
    key = ProviderKey("OPENAI_API_KEY", "operator", ("https://api.openai.com",), SecretStr(KEY))
    return Endpoint("openai", base, key, resolver=public, max_retries=1)


async def mic() -> AsyncIterator[bytes]:
    for _ in range(5):
        yield b"\x10\x00" * 160


@respx.mock
async def test_transcribes_the_buffered_utterance() -> None:
    route = respx.post(f"{BASE}/audio/transcriptions").mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(200, json={"text": " What time is it? "}),
        ]
    )
    stt = OpenAISTT(endpoint(), model="gpt-4o-mini-transcribe")
    got = [t async for t in stt.stream(mic(), SttOptions(model="nova-3", language="en-US"))]
    assert got == [Transcript("What time is it?", is_final=True)]
    assert route.call_count == 2  # the multipart body survives a retry
    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = sent.content
    assert b'name="model"\r\n\r\ngpt-4o-mini-transcribe' in body  # not the stage's nova-3
    assert b'name="language"\r\n\r\nen' in body
    wav = body[body.index(b"RIFF") :]
    pcm, rate = parse_wav(wav[: wav.index(b"\r\n--")])
    assert rate == 16_000 and len(pcm) == 5 * 320


@respx.mock
async def test_transcription_without_text_is_a_bad_response() -> None:
    respx.post(f"{BASE}/audio/transcriptions").mock(return_value=httpx.Response(200, json={}))
    with pytest.raises(ProviderBadResponse):
        [t async for t in OpenAISTT(endpoint()).stream(mic(), SttOptions())]


@respx.mock
async def test_no_audio_no_request() -> None:
    route = respx.post(f"{BASE}/audio/transcriptions")

    async def nothing() -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover

    assert [t async for t in OpenAISTT(endpoint()).stream(nothing(), SttOptions())] == []
    assert route.call_count == 0


class Pieces(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in (b"\x01", b"\x02\x03\x04", b"\x05\x06"):
            yield piece

    async def aclose(self) -> None:
        pass


@respx.mock
async def test_tts_streams_pcm_at_24k() -> None:
    route = respx.post(f"{BASE}/audio/speech").mock(
        return_value=httpx.Response(200, stream=Pieces())
    )
    tts = OpenAITTS(endpoint(), model="gpt-4o-mini-tts", voice="coral")
    chunks = [c async for c in tts.stream("Hi there.", TtsOptions(model="aura-2-thalia-en"))]
    assert chunks == [PcmChunk(b"\x01\x02\x03\x04", 24_000), PcmChunk(b"\x05\x06", 24_000)]
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "model": "gpt-4o-mini-tts",
        "voice": "coral",
        "input": "Hi there.",
        "response_format": "pcm",
    }


def test_operator_key_only_for_the_operator_base() -> None:
    with pytest.raises(ConfigRefused, match="operator's key"):
        endpoint("https://elsewhere.example/v1")
