"""Deepgram live STT against a local fake WebSocket server replaying recorded-shape
payloads, and Aura TTS against respx."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr
from websockets.asyncio.server import ServerConnection, serve

from runtime.pipeline.errors import ProviderAuthError, ProviderUnavailable
from runtime.pipeline.interfaces import PcmChunk, SttOptions, Transcript, TtsOptions
from runtime.providers.deepgram import (
    DeepgramSTT,
    DeepgramTTS,
    _LiveState,
    listen_query,
    results_to_transcript,
)
from runtime.providers.endpoint import Endpoint
from runtime.providers.keys import ProviderKey

KEY = "dg-test-key-0123456789abcdef"


def results(text: str, *, is_final: bool, speech_final: bool = False) -> dict[str, Any]:
    """The shape of a Deepgram live `Results` message (trimmed to what we read)."""
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": 1.02,
        "start": 0.0,
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": False,
        "channel": {
            "alternatives": [
                {"transcript": text, "confidence": 0.98, "words": []},
            ]
        },
        "metadata": {"request_id": "5f1b", "model_info": {"name": "2-general-nova"}},
    }


SPEECH_STARTED = {"type": "SpeechStarted", "channel": [0], "timestamp": 0.3}
UTTERANCE_END = {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 2.1}
METADATA = {"type": "Metadata", "request_id": "5f1b", "duration": 2.5, "channels": 1}

Handler = Callable[[ServerConnection], Awaitable[None]]


class FakeDeepgram:
    """A local live-listen server: records what it got, replays a script."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.paths: list[str] = []
        self.auth: list[str | None] = []
        self.audio: list[bytes] = []
        self.controls: list[str] = []

    async def __aenter__(self) -> FakeDeepgram:
        async def handle(ws: ServerConnection) -> None:
            assert ws.request is not None
            self.paths.append(ws.request.path)
            self.auth.append(ws.request.headers.get("Authorization"))
            await self.handler(ws)

        self.server = await serve(handle, "127.0.0.1", 0, compression=None)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def until_control(self, ws: ServerConnection, kind: str) -> None:
        async for message in ws:
            if isinstance(message, bytes):
                self.audio.append(message)
                continue
            self.controls.append(json.loads(message)["type"])
            if self.controls[-1] == kind:
                return


def endpoint(port: int, **kw: Any) -> Endpoint:
    key = ProviderKey("DEEPGRAM_API_KEY", "operator", (f"http://127.0.0.1:{port}",), SecretStr(KEY))
    values: dict[str, Any] = {
        "provider": "deepgram",
        "base_url": f"http://127.0.0.1:{port}",
        "key": key,
        "allow_private": True,  # the fake server is on loopback; this test only
        "timeout_s": 5.0,
        "max_retries": 0,
    }
    values.update(kw)
    return Endpoint(**values)


async def audio(chunks: int = 3) -> AsyncIterator[bytes]:
    for index in range(chunks):
        yield bytes([index]) * 640
        await asyncio.sleep(0)


OPTIONS = SttOptions(
    features=("smart_format", "punctuate"), endpointing_ms=300, utterance_end_ms=1000
)


async def test_live_results_map_to_transcripts(
    unit: float, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # websockets logs handshake headers at DEBUG

    async def script(ws: ServerConnection) -> None:
        await ws.send(json.dumps(METADATA))
        await ws.send(json.dumps(SPEECH_STARTED))
        await ws.send(json.dumps(results("what", is_final=False)))
        await ws.send(json.dumps(results("what time", is_final=False)))
        await ws.send(json.dumps(results("What time is it?", is_final=True, speech_final=True)))
        await fake.until_control(ws, "CloseStream")
        await ws.close(1000)

    async with FakeDeepgram(script) as fake:
        stt = DeepgramSTT(endpoint(fake.port), model="nova-3")
        got = await asyncio.wait_for(_collect(stt.stream(audio(), OPTIONS)), 10 * unit)
    assert got == [
        Transcript("what", is_final=False),
        Transcript("what time", is_final=False),
        Transcript("What time is it?", is_final=True, speech_final=True),
    ]
    assert fake.auth == [f"Token {KEY}"]
    # Our side of the socket (the fake server's own logs are not the runtime's).
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("runtime.")]
    assert any("Authorization" in line for line in ours)
    assert not any(KEY in line for line in ours)
    assert fake.controls == ["Finalize", "CloseStream"]
    assert len(fake.audio) == 3
    query = fake.paths[0].split("?", 1)[1]
    for part in (
        "model=nova-3",
        "encoding=linear16",
        "sample_rate=16000",
        "channels=1",
        "endpointing=300",
        "utterance_end_ms=1000",
        "smart_format=true",
        "punctuate=true",
        "interim_results=true",
        "vad_events=true",
    ):
        assert part in query


async def test_utterance_end_ends_the_turn_when_words_are_pending(unit: float) -> None:
    async def script(ws: ServerConnection) -> None:
        await ws.send(json.dumps(results("turn the lights", is_final=True)))
        await ws.send(json.dumps(results("", is_final=True)))
        await ws.send(json.dumps(UTTERANCE_END))
        await ws.send(json.dumps(UTTERANCE_END))  # a second one has nothing pending
        await fake.until_control(ws, "CloseStream")
        await ws.close(1000)

    async with FakeDeepgram(script) as fake:
        stt = DeepgramSTT(endpoint(fake.port))
        got = await asyncio.wait_for(_collect(stt.stream(audio(), OPTIONS)), 10 * unit)
    assert got == [
        Transcript("turn the lights", is_final=True),
        Transcript("", is_final=True, speech_final=True),
    ]


async def test_mid_stream_close_raises_unavailable(unit: float) -> None:
    async def script(ws: ServerConnection) -> None:
        await ws.send(json.dumps(results("hello", is_final=False)))
        await ws.close(1011, "NET-0001 no audio received")

    async with FakeDeepgram(script) as fake:
        stt = DeepgramSTT(endpoint(fake.port))
        got: list[Transcript] = []
        with pytest.raises(ProviderUnavailable, match="1011"):
            async with asyncio.timeout(10 * unit):
                async for transcript in stt.stream(audio(), OPTIONS):
                    got.append(transcript)
    assert got == [Transcript("hello", is_final=False)]


async def test_handshake_401_is_an_auth_error_without_the_key(unit: float) -> None:
    from websockets.asyncio.server import serve as raw_serve
    from websockets.http11 import Request, Response

    def reject(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(401, json.dumps({"err_msg": f"Invalid credentials {KEY}"}))

    async def never(ws: ServerConnection) -> None:  # pragma: no cover - rejected before
        raise AssertionError

    server = await raw_serve(never, "127.0.0.1", 0, process_request=reject)
    port = server.sockets[0].getsockname()[1]
    try:
        stt = DeepgramSTT(endpoint(port))
        with pytest.raises(ProviderAuthError) as info:
            await asyncio.wait_for(_collect(stt.stream(audio(), OPTIONS)), 10 * unit)
        assert KEY not in str(info.value)
    finally:
        server.close()
        await server.wait_closed()


async def test_closing_the_stream_closes_the_socket(unit: float) -> None:
    closed = asyncio.Event()

    async def script(ws: ServerConnection) -> None:
        await ws.send(json.dumps(results("hi", is_final=False)))
        await ws.wait_closed()
        closed.set()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"\0" * 640
            await asyncio.sleep(0.01 * unit)

    async with FakeDeepgram(script) as fake:
        stream = DeepgramSTT(endpoint(fake.port)).stream(endless(), OPTIONS)
        assert await asyncio.wait_for(anext(stream), 10 * unit) == Transcript("hi", False)
        await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.wait_for(closed.wait(), 10 * unit)


async def test_loopback_refused_without_operator_permission() -> None:
    from runtime.pipeline.errors import ConfigRefused

    stt = DeepgramSTT(endpoint(9, allow_private=False))
    with pytest.raises(ConfigRefused, match="loopback"):
        await _collect(stt.stream(audio(), OPTIONS))


def test_sans_io_mapping_ignores_empty_endpoints() -> None:
    state = _LiveState()
    assert results_to_transcript(results("", is_final=True, speech_final=True), state) is None
    assert results_to_transcript(SPEECH_STARTED, state) is None
    assert results_to_transcript(UTTERANCE_END, state) is None


def test_endpointing_off() -> None:
    query = listen_query(SttOptions(endpointing_ms=None, utterance_end_ms=500), "nova-2")
    assert query["endpointing"] == "false"
    assert query["utterance_end_ms"] == "1000"  # Deepgram's minimum


async def _collect(stream: AsyncIterator[Transcript]) -> list[Transcript]:
    return [t async for t in stream]


# --- Aura TTS ------------------------------------------------------------------------------


async def public(host: str, port: int) -> list[str]:
    return ["162.159.140.245"]


def aura_endpoint() -> Endpoint:
    key = ProviderKey("DEEPGRAM_API_KEY", "operator", ("https://api.deepgram.com",), SecretStr(KEY))
    return Endpoint("deepgram", "https://api.deepgram.com", key, resolver=public, max_retries=1)


class Odd(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"\x01\x02\x03"  # split mid-sample
        yield b"\x04\x05\x06"

    async def aclose(self) -> None:
        pass


@respx.mock
async def test_aura_streams_linear16_without_container() -> None:
    route = respx.post(url__startswith="https://api.deepgram.com/v1/speak").mock(
        return_value=httpx.Response(200, stream=Odd())
    )
    tts = DeepgramTTS(aura_endpoint(), model="aura-2-thalia-en")
    chunks = [c async for c in tts.stream("Hello there.", TtsOptions(sample_rate=24_000))]
    assert chunks == [PcmChunk(b"\x01\x02", 24_000), PcmChunk(b"\x03\x04\x05\x06", 24_000)]
    sent = route.calls.last.request
    assert sent.url.params["container"] == "none"
    assert sent.url.params["encoding"] == "linear16"
    assert sent.url.params["sample_rate"] == "24000"
    assert sent.url.params["model"] == "aura-2-thalia-en"
    assert sent.headers["authorization"] == f"Token {KEY}"
    assert json.loads(sent.content) == {"text": "Hello there."}


@respx.mock
async def test_aura_429_then_success() -> None:
    route = respx.post(url__startswith="https://api.deepgram.com/v1/speak").mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "0"}),
            httpx.Response(200, content=b"\x00\x01"),
        ]
    )
    chunks = [c async for c in DeepgramTTS(aura_endpoint()).stream("Hi.", TtsOptions())]
    assert chunks == [PcmChunk(b"\x00\x01", 24_000)] and route.call_count == 2
