"""The `echo` Realtime provider: the fake provider, in process, on the offline engines.

What the pipeline's labelled echo model is to a sandwich agent, this is to a
speech-to-speech agent with no key: the same Realtime events through the same
bridge, but the "model" hears with local Whisper, answers "(echo) You said: …"
(and what was said before, so memory is audible) and speaks with Piper. It runs
in the runtime's own process over an in-memory ASGI WebSocket, so it needs no
port, no key and no network rule. `opendot demo --realtime` uses it when no
OPENAI_API_KEY is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from runtime.pipeline.errors import ProviderUnavailable
from runtime.protocol.realtime_session import PCM_RATE, MessageItem
from runtime.providers.echo_llm import tool_demo_sentences, volume_asked
from runtime.realtime.fake import FakeRealtime, ToolDemo, echo_reply
from runtime.realtime.target import PROVIDER

LABEL = "(echo)"


class LoopbackConnection:
    """A `RealtimeConnection` to an ASGI app in this process (no socket)."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._to_app: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.messages_sent = 0
        self.bytes_sent = 0

    async def open(self) -> LoopbackConnection:
        scope = {
            "type": "websocket",
            "path": "/v1/realtime",
            "headers": [],
            "query_string": b"model=echo",
        }
        self._task = asyncio.create_task(
            self._app(scope, self._to_app.get, self._from_app.put), name="realtime-echo"
        )
        await self._to_app.put({"type": "websocket.connect"})
        first = await self._from_app.get()
        if first["type"] != "websocket.accept":
            raise ProviderUnavailable(PROVIDER, "the echo provider refused the session")
        return self

    async def send(self, text: str) -> None:
        await self._to_app.put({"type": "websocket.receive", "text": text})
        self.messages_sent += 1
        self.bytes_sent += len(text)

    async def recv(self) -> str:
        message = await self._from_app.get()
        if message["type"] == "websocket.send" and message.get("text") is not None:
            return str(message["text"])
        raise ProviderUnavailable(PROVIDER, f"the echo provider closed ({message.get('code')})")

    async def close(self) -> None:
        await self._to_app.put({"type": "websocket.disconnect", "code": 1000})
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def _hear(pcm24k: bytes) -> str:
    from runtime.audio.resample import resample
    from runtime.providers.local_stt import whisper_engine

    pcm16k = resample(pcm24k, PCM_RATE, 16_000)
    result = await asyncio.to_thread(lambda: whisper_engine().transcribe(pcm16k))
    return result.text.strip()


def _speak(text: str) -> bytes:
    """Blocking (the fake runs it in a thread): Piper, else espeak-ng, at 24 kHz."""
    from runtime.audio.resample import resample

    try:
        from runtime.providers.local_tts import piper_voice

        voice = piper_voice()
        pcm = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text))
        rate = int(voice.config.sample_rate)
    except Exception:
        from runtime.audio.espeak import engine

        speaker = engine()
        pcm, rate = speaker.synthesize(text, "en-us", 175), speaker.sample_rate
    return resample(pcm, rate, PCM_RATE)


def _reply(conversation: list[MessageItem], transcript: str) -> str:
    return f"{LABEL} {echo_reply(conversation, transcript)}"


def _tool_call(heard: str, tools: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """The pipeline echo model's labelled tool demo, on this side too: "set the volume
    to N" calls the offered volume tool (the Dot's own, through the bridge)."""
    level = volume_asked(heard)
    name = next(
        (str(t["name"]) for t in tools if str(t.get("name", "")).endswith("set_volume")), None
    )
    if level is None or name is None:
        return None
    return name, json.dumps({"volume": level})


def _tool_answer(_name: str, arguments: str, output: str) -> str:
    level = int(json.loads(arguments)["volume"])
    return " ".join(tool_demo_sentences(level, output))


@functools.cache
def echo_provider() -> FakeRealtime:
    """The process's echo provider (stateless between sessions; models load once)."""
    return FakeRealtime(
        transcript=_hear,
        reply=_reply,
        speak=_speak,
        tool_demo=ToolDemo(_tool_call, _tool_answer),
    )


async def connect_echo() -> LoopbackConnection:
    return await LoopbackConnection(echo_provider()).open()
