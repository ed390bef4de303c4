"""Loopback fakes of the providers and the platform API, for `opendot bench runtime`.

One asyncio server on one port speaks, with zero added delay:

- Deepgram live STT (`GET /v1/listen`, WebSocket): binary linear16 audio in;
  an interim `Results` (`is_final: false`) per second of audio; on `Finalize`
  a final `Results` (`is_final: true`, `from_finalize: true`) carrying the
  utterance; on `CloseStream` a `Metadata` message and a normal close (1000),
  as Deepgram documents its live API.
- Deepgram Aura TTS (`POST /v1/speak?encoding=linear16&container=none`): raw
  PCM16 at the asked rate, streamed in chunks (HTTP/1.1 chunked).
- OpenAI Responses (`POST /v1/responses`, `stream: true`): Server-Sent Events
  `response.created`, two `response.output_text.delta`, `response.completed`.
- The platform's internal API (docs/internal-api.md): `device-runtime/verify`
  grants every token the agent given at start; every other endpoint answers
  `{"ok": true}`.
- `GET /fake/stats`: what the fakes saw (STT sockets opened, audio seconds
  received, requests per path), so a bench can report provider usage.

HTTP is HTTP/1.1 with keep-alive, parsed by hand (the fakes must cost the
load generator's core as little as possible); the WebSocket side is
`websockets`' own sans-I/O server protocol, so framing, masking, pings and the
close handshake are the library's.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

REPLY_TEXT = "Hi there."
TRANSCRIPT = "hello there"
TTS_SECONDS = 0.6  # audio per synthesis (a short sentence)
TTS_CHUNK_BYTES = 4800  # 100 ms at 24 kHz: Aura streams in pieces of about this size


@dataclass
class FakeStats:
    stt_sockets: int = 0
    stt_open: int = 0
    stt_audio_bytes: int = 0
    stt_audio_seconds: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "stt_sockets": self.stt_sockets,
            "stt_open": self.stt_open,
            "stt_audio_seconds": round(self.stt_audio_seconds, 3),
            "requests": dict(self.requests),
        }


def _tone(rate: int, seconds: float) -> bytes:
    n = int(rate * seconds)
    return b"".join(
        struct.pack("<h", int(3000 * math.sin(2 * math.pi * 220 * i / rate))) for i in range(n)
    )


def results(text: str, *, is_final: bool, speech_final: bool, start: float, duration: float) -> str:
    """A Deepgram live `Results` message (the documented fields the runtime reads, and a
    few it does not, so parsing costs what it costs against the real service)."""
    words = [
        {"word": w, "start": start, "end": start + duration, "confidence": 0.99}
        for w in text.split()
    ]
    return json.dumps(
        {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": duration,
            "start": start,
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": is_final and not speech_final,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.99, "words": words}]},
            "metadata": {"request_id": "bench", "model_info": {"name": "nova-3"}},
        }
    )


class _Listen:
    """One live STT socket's state."""

    def __init__(self, stats: FakeStats, sample_rate: int) -> None:
        self.stats = stats
        self.bytes_per_s = 2 * sample_rate
        self.audio = 0
        self.next_interim = self.bytes_per_s

    def on_audio(self, data: bytes) -> list[str]:
        self.audio += len(data)
        self.stats.stt_audio_bytes += len(data)
        self.stats.stt_audio_seconds += len(data) / self.bytes_per_s
        if self.audio < self.next_interim:
            return []
        self.next_interim += self.bytes_per_s
        seconds = self.audio / self.bytes_per_s
        return [results(TRANSCRIPT, is_final=False, speech_final=False, start=0, duration=seconds)]

    def on_text(self, text: str) -> tuple[list[str], bool]:
        """(messages to send, whether to close normally afterwards)."""
        try:
            kind = json.loads(text).get("type")
        except (ValueError, AttributeError):
            return [], False
        seconds = self.audio / self.bytes_per_s
        if kind == "Finalize":
            return [
                results(TRANSCRIPT, is_final=True, speech_final=False, start=0, duration=seconds)
            ], False
        if kind == "CloseStream":
            meta = {"type": "Metadata", "request_id": "bench", "duration": seconds, "channels": 1}
            return [json.dumps(meta)], True
        return [], False


class FakeProtocol(asyncio.Protocol):
    def __init__(self, fakes: ProviderFakes) -> None:
        self.fakes = fakes
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.ws: ServerProtocol | None = None
        self.listen: _Listen | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.fakes.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fakes.connections.discard(self)
        if self.listen is not None:
            self.fakes.stats.stt_open -= 1
            self.listen = None

    def data_received(self, data: bytes) -> None:
        if self.ws is not None:
            self._ws_data(data)
            return
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            lines = head.split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("upgrade", "").lower() == "websocket":
                raw, self.buffer = bytes(self.buffer), bytearray()
                self._upgrade(target, raw)
                return
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            self._http(method, target, body)

    # --- HTTP ---------------------------------------------------------------------

    def _write_head(self, status: int, content_type: str, length: int | None) -> None:
        assert self.transport is not None
        framing = (
            f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
        )
        self.transport.write(
            f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n".encode()
        )

    def _chunk(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"%x\r\n%b\r\n" % (len(data), data))

    def _http(self, method: str, target: str, body: bytes) -> None:
        url = urlsplit(target)
        path = url.path
        stats = self.fakes.stats
        stats.requests[path] += 1
        if path.endswith("/responses"):
            self._write_head(200, "text/event-stream", None)
            events: list[dict[str, Any]] = [
                {
                    "type": "response.created",
                    "response": {"id": "resp_bench", "status": "in_progress"},
                },
                {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "Hi "},
                {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "there."},
                {
                    "type": "response.completed",
                    "response": {"id": "resp_bench", "status": "completed", "output": []},
                },
            ]
            for event in events:
                self._chunk(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            self._chunk(b"")
            return
        if path == "/v1/speak":
            query = parse_qs(url.query)
            rate = int(query.get("sample_rate", ["24000"])[0])
            pcm = self.fakes.tone(rate)
            self._write_head(200, "application/octet-stream", None)
            for i in range(0, len(pcm), TTS_CHUNK_BYTES):
                self._chunk(pcm[i : i + TTS_CHUNK_BYTES])
            self._chunk(b"")
            return
        if path == "/fake/stats":
            answer = json.dumps(stats.to_json()).encode()
        elif path.endswith("/device-runtime/verify"):
            token = json.loads(body or b"{}").get("token", "")
            answer = json.dumps(
                {
                    "userId": "00000000-0000-4000-8000-00000000b0b0",
                    "device": {"id": token},
                    "agent": self.fakes.agent,
                    "memory": [],
                    "secrets": {},
                }
            ).encode()
        else:
            answer = b'{"ok": true}'
        self._write_head(200, "application/json", len(answer))
        assert self.transport is not None
        self.transport.write(answer)

    # --- WebSocket (Deepgram live) ---------------------------------------------------

    def _upgrade(self, target: str, raw: bytes) -> None:
        assert self.transport is not None
        ws = ServerProtocol(max_size=1 << 20)
        ws.receive_data(raw)
        request = next((e for e in ws.events_received() if isinstance(e, Request)), None)
        if request is None or not urlsplit(target).path.startswith("/v1/listen"):
            self.transport.close()
            return
        response = ws.accept(request)
        ws.send_response(response)
        self.ws = ws
        rate = int(parse_qs(urlsplit(target).query).get("sample_rate", ["16000"])[0])
        self.listen = _Listen(self.fakes.stats, rate)
        self.fakes.stats.stt_sockets += 1
        self.fakes.stats.stt_open += 1
        self._flush()

    def _ws_data(self, data: bytes) -> None:
        ws, listen = self.ws, self.listen
        assert ws is not None and listen is not None
        ws.receive_data(data)
        close = False
        for event in ws.events_received():
            if not isinstance(event, Frame):
                continue
            if event.opcode is Opcode.BINARY:
                for message in listen.on_audio(bytes(event.data)):
                    ws.send_text(message.encode())
            elif event.opcode is Opcode.TEXT:
                messages, close = listen.on_text(bytes(event.data).decode())
                for message in messages:
                    ws.send_text(message.encode())
        if close:
            ws.send_close(1000)
        self._flush()

    def _flush(self) -> None:
        ws, transport = self.ws, self.transport
        assert ws is not None and transport is not None
        for data in ws.data_to_send():
            if data:
                transport.write(data)
            else:
                transport.close()  # the library asks for the TCP close after the handshake


class ProviderFakes:
    def __init__(self, agent: dict[str, Any] | None) -> None:
        self.agent = agent
        self.stats = FakeStats()
        self._tones: dict[int, bytes] = {}
        self.server: asyncio.Server | None = None
        self.connections: set[FakeProtocol] = set()

    def tone(self, rate: int) -> bytes:
        if rate not in self._tones:
            self._tones[rate] = _tone(rate, TTS_SECONDS)
        return self._tones[rate]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: FakeProtocol(self), host, port, backlog=1024)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for protocol in list(self.connections):
                if protocol.transport is not None:
                    protocol.transport.abort()
            await self.server.wait_closed()


def bench_agent() -> dict[str, Any]:
    """The agent every benched device follows: Deepgram STT with its own endpointing,
    OpenAI Responses, Deepgram TTS (the original OpenDot's cloud default)."""
    return {
        "id": "00000000-0000-4000-8000-0000000be4c4",
        "name": "Bench",
        "pipeline": [
            {"id": "vad", "provider": "deepgram", "settings": {}},
            {"id": "stt", "provider": "deepgram", "model": "nova-3", "settings": {}},
            {"id": "llm", "provider": "openai", "model": "gpt-4.1-mini", "settings": {}},
            {"id": "tts", "provider": "deepgram", "model": "aura-2-thalia-en", "settings": {}},
        ],
    }


def serve(port: int, agent_json: str) -> None:
    """Run the fakes on `port` until killed (the bench's child process)."""

    async def main() -> None:
        fakes = ProviderFakes(json.loads(agent_json))
        await fakes.start(port=port)
        print("fakes ready", file=sys.stderr, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
