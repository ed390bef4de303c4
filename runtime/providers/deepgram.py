"""Deepgram: live recognition over a WebSocket, and Aura TTS over HTTP.

Live STT (`/v1/listen`), the original OpenDot's default:
- audio is sent as binary linear16 frames as it arrives; when the input ends
  the adapter sends `Finalize` then `CloseStream` and reads what remains;
- `Results` become `Transcript(is_final, speech_final)`; `UtteranceEnd` (the
  word-gap fallback for noisy rooms) becomes an empty final with
  `speech_final=True` when words are pending, so the runtime ends the turn;
  `SpeechStarted` and `Metadata` carry nothing the seam needs;
- the socket connects to the address `netguard` checked (pinned), with
  environment proxies off; handshake statuses map like HTTP ones, an abnormal
  close mid-stream raises `ProviderUnavailable`.

Aura TTS (`/v1/speak`) asks for linear16 with `container=none`, so the body is
raw PCM16 that is yielded piece by piece as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from runtime.audio.pcm import whole_samples
from runtime.pipeline.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from runtime.pipeline.interfaces import PcmChunk, SttOptions, Transcript, TtsOptions
from runtime.providers.endpoint import Endpoint
from runtime.providers.http import (
    RedactingLogger,
    map_exception,
    redact,
    status_error,
    stream_body,
)

log = logging.getLogger(__name__)

DEFAULT_STT_MODEL = "nova-3"
DEFAULT_TTS_MODEL = "aura-2-thalia-en"
TTS_RATES = (8_000, 16_000, 24_000, 32_000, 48_000)
_TRANSCRIPT_FEATURES = ("smart_format", "punctuate", "numerals")


def listen_query(options: SttOptions, model: str) -> dict[str, str]:
    """Query parameters of the live socket (original OpenDot §4, plus channels=1)."""
    query = {
        "model": model,
        "language": options.language or "en-US",
        "encoding": "linear16",
        "sample_rate": str(options.sample_rate),
        "channels": "1",
        "interim_results": "true",
        "vad_events": "true",
    }
    for feature in options.features:
        if feature in _TRANSCRIPT_FEATURES:
            query[feature] = "true"
    query["endpointing"] = (
        str(options.endpointing_ms) if options.endpointing_ms is not None else "false"
    )
    if options.utterance_end_ms is not None:
        # Deepgram requires interim results for utterance_end_ms, and at least 1000 ms.
        query["utterance_end_ms"] = str(max(1000, options.utterance_end_ms))
    return query


def ws_base(base_url: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@dataclass
class _LiveState:
    pending_words: bool = False  # final words since the last endpoint
    closing: bool = False  # we sent CloseStream; a normal close now ends the stream


def results_to_transcript(message: dict[str, Any], state: _LiveState) -> Transcript | None:
    """One Deepgram message as a Transcript, or None (Sans-I/O)."""
    kind = message.get("type")
    if kind == "Results":
        alternatives = (message.get("channel") or {}).get("alternatives") or [{}]
        text = str(alternatives[0].get("transcript") or "").strip()
        is_final = bool(message.get("is_final"))
        speech_final = bool(message.get("speech_final"))
        if is_final and text:
            state.pending_words = True
        if speech_final:
            if not state.pending_words and not text:
                return None  # endpoint after silence: nothing was said
            state.pending_words = False
            return Transcript(text=text, is_final=True, speech_final=True)
        if not text:
            return None
        return Transcript(text=text, is_final=is_final)
    if kind == "UtteranceEnd":
        if not state.pending_words:
            return None
        state.pending_words = False
        return Transcript(text="", is_final=True, speech_final=True)
    return None  # SpeechStarted, Metadata, anything new


class DeepgramSTT:
    """`model` is this provider's own (the stage's may name another vendor's)."""

    def __init__(self, endpoint: Endpoint, model: str = DEFAULT_STT_MODEL) -> None:
        self.endpoint = endpoint
        self.model = model or DEFAULT_STT_MODEL
        self.name = endpoint.provider

    async def _connect(self, url: str) -> ClientConnection:
        endpoint = self.endpoint
        host = urlsplit(url).hostname or ""
        port = urlsplit(url).port or (443 if url.startswith("wss:") else 80)
        addresses = await endpoint.vet()  # resolve and check now; connect to what was checked
        headers = {}
        if endpoint.key is not None:
            headers["Authorization"] = f"Token {endpoint.key.reveal()}"
        attempt = 0
        while True:
            try:
                kwargs: dict[str, Any] = {"host": addresses[0], "port": port}
                if url.startswith("wss:"):
                    kwargs["server_hostname"] = host
                return await connect(
                    url,
                    additional_headers=headers,
                    proxy=None,
                    compression=None,
                    open_timeout=endpoint.connect_timeout_s + endpoint.first_byte_timeout_s,
                    close_timeout=1.0,
                    ping_interval=10,
                    max_size=1 << 20,
                    logger=RedactingLogger(log, endpoint.policy().secrets),
                    **kwargs,
                )
            except InvalidStatus as exc:
                response = exc.response
                error: ProviderError = status_error(
                    endpoint.policy(),
                    response.status_code,
                    bytes(response.body or b""),
                    response.headers.get("retry-after"),
                )
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                error = map_exception(endpoint.policy(), exc)
            if not error.retryable or attempt >= endpoint.max_retries:
                raise error
            attempt += 1
            await asyncio.sleep(min(0.25 * 2**attempt, 2.0))

    async def stream(
        self, audio: AsyncIterable[bytes], options: SttOptions
    ) -> AsyncIterator[Transcript]:
        query = listen_query(options, self.model)
        url = f"{ws_base(self.endpoint.base_url)}/v1/listen?{urlencode(query)}"
        ws = await self._connect(url)
        state = _LiveState()
        secrets = self.endpoint.policy().secrets
        sender = asyncio.create_task(self._send(ws, audio, state), name="deepgram-send")
        try:
            while True:
                try:
                    if state.closing:
                        async with asyncio.timeout(self.endpoint.timeout_s):
                            message = await ws.recv()
                    else:
                        message = await ws.recv()
                except TimeoutError:
                    raise ProviderTimeout(
                        self.name, "no final results after the audio ended"
                    ) from None
                except ConnectionClosed as exc:
                    if state.closing and exc.rcvd is not None and exc.rcvd.code == 1000:
                        return
                    if sender.done() and not sender.cancelled() and sender.exception():
                        raise sender.exception() from None  # type: ignore[misc]
                    reason = exc.rcvd.reason if exc.rcvd is not None else "no close frame"
                    code = exc.rcvd.code if exc.rcvd is not None else 1006
                    raise ProviderUnavailable(
                        self.name,
                        redact(f"live socket closed ({code} {reason})", secrets),
                    ) from None
                if isinstance(message, bytes):
                    continue
                try:
                    data = json.loads(message)
                except ValueError:
                    raise ProviderBadResponse(self.name, "a live message is not JSON") from None
                if isinstance(data, dict) and data.get("type") == "Error":
                    raise ProviderUnavailable(
                        self.name, str(data.get("description") or data.get("message") or data)
                    )
                transcript = results_to_transcript(data, state) if isinstance(data, dict) else None
                if transcript is not None:
                    yield transcript
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
            await ws.close()

    async def _send(
        self, ws: ClientConnection, audio: AsyncIterable[bytes], state: _LiveState
    ) -> None:
        try:
            async for chunk in audio:
                if chunk:
                    await ws.send(chunk)
            await ws.send(json.dumps({"type": "Finalize"}))
            state.closing = True
            await ws.send(json.dumps({"type": "CloseStream"}))
        except ConnectionClosed:
            return  # the receiver reports why
        except Exception:
            await ws.close(1011)  # wake the receiver, which re-raises our failure
            raise


class DeepgramTTS:
    def __init__(self, endpoint: Endpoint, model: str = DEFAULT_TTS_MODEL) -> None:
        self.endpoint = endpoint
        self.model = model or DEFAULT_TTS_MODEL
        self.name = endpoint.provider

    async def stream(self, text: str, options: TtsOptions) -> AsyncIterator[PcmChunk]:
        if not text.strip():
            return
        await self.endpoint.ensure_vetted()
        rate = options.sample_rate if options.sample_rate in TTS_RATES else 24_000
        query = {
            "model": self.model,
            "encoding": "linear16",
            "sample_rate": str(rate),
            "container": "none",
        }
        headers = {"Content-Type": "application/json"}
        if self.endpoint.key is not None:
            headers["Authorization"] = f"Token {self.endpoint.key.reveal()}"
        client = self.endpoint.http()
        request = client.build_request(
            "POST",
            f"{self.endpoint.base_url}/v1/speak?{urlencode(query)}",
            headers=headers,
            content=json.dumps({"text": text}).encode(),
        )
        pieces = stream_body(client, request, self.endpoint.policy())
        try:
            async for pcm in whole_samples(pieces):
                yield PcmChunk(pcm=pcm, sample_rate=rate)
        finally:
            await pieces.aclose()
