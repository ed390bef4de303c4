"""Everything a session sends goes through one `Outbox` with one writer task.

Typed frames decide their own priority, as in Pipecat: *stream* frames (JSON
messages that belong to a reply, audio packets, markers) keep their order,
while *control* frames (`Flush`, `CloseSocket`) overtake whatever stream
frames are still queued. An abort is therefore one `Flush(then=[tts stop])`:
the queued audio is dropped and the stop goes out next, and because the writer
is the only sender no audio can follow it.

Audio is paced by `Pacer`, a pure leaky bucket that models the device's play
buffer: a short pre-buffer goes out at once, then one packet per frame
duration, so the device never holds more than `lead_frames` packets (far below
its 40-packet queue). Browsers get no pacing but a bounded queue: a slow client
makes the producer wait (backpressure) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("opendot.runtime.outbox")


# --- frames ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendText:
    text: str


@dataclass(frozen=True, slots=True)
class SendAudio:
    """One downlink packet, already framed for the wire; paced when a pacer is set."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SendBytes:
    """Binary data sent without pacing (browser PCM)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Marker:
    """Resolved when the writer reaches it (True) or when a flush drops it (False)."""

    reached: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True, slots=True)
class Flush:
    """Control: drop every queued stream frame, then send `then` texts."""

    then: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CloseSocket:
    """Control: flush, close the socket with this code and reason, stop the writer."""

    code: int = 1000
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Urgent:
    """Control: send this text ahead of the queued stream frames, dropping none of them
    (MCP requests to the device must not wait behind seconds of paced audio)."""

    text: str


StreamFrame = SendText | SendAudio | SendBytes | Marker
ControlFrame = Flush | CloseSocket | Urgent


# --- pacing ----------------------------------------------------------------------------


class Pacer:
    """A clock-free model of the device's play buffer: callers pass `now`."""

    def __init__(self, frame_s: float = 0.06, lead_frames: int = 5) -> None:
        self.frame_s = frame_s
        self.lead_frames = lead_frames
        self.buffer_end = 0.0  # when the device will have played everything sent

    def delay(self, now: float) -> float:
        """Seconds to wait before the next packet may go out."""
        ahead = max(0.0, self.buffer_end - now)
        wait = ahead - (self.lead_frames - 1) * self.frame_s
        return wait if wait > 1e-6 else 0.0  # float sums of 0.06 must not cost a sleep

    def sent(self, now: float) -> None:
        self.buffer_end = max(self.buffer_end, now) + self.frame_s

    def reset(self) -> None:
        self.buffer_end = 0.0

    def drained_in(self, now: float) -> float:
        """Seconds until the device has played what was sent."""
        return max(0.0, self.buffer_end - now)


# --- the outbox ------------------------------------------------------------------------


class Transport:
    """What the writer needs from a socket; the ASGI adapter implements it."""

    async def send_text(self, text: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def send_bytes(self, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def close(self, code: int, reason: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class Outbox:
    def __init__(
        self,
        transport: Transport,
        *,
        pacer: Pacer | None = None,
        max_stream: int = 64,
        clock: Callable[[], float] | None = None,
        on_audio_sent: Callable[[], None] | None = None,
    ) -> None:
        self._transport = transport
        self._pacer = pacer
        self._max = max_stream
        self._clock = clock or asyncio.get_running_loop().time
        self._on_audio_sent = on_audio_sent
        self._stream: deque[StreamFrame] = deque()
        self._control: deque[ControlFrame] = deque()
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self.closed = False
        self.close_code: int | None = None

    @property
    def queued(self) -> int:
        return len(self._stream)

    async def put(self, frame: StreamFrame) -> None:
        """Queue a stream frame; waits while the queue is full (backpressure)."""
        while len(self._stream) >= self._max and not self.closed:
            self._space.clear()
            await self._space.wait()
        self.put_nowait(frame)

    def put_nowait(self, frame: StreamFrame) -> None:
        if self.closed:
            if isinstance(frame, Marker) and not frame.reached.done():
                frame.reached.set_result(False)
            return
        self._stream.append(frame)
        self._wake.set()

    def control(self, frame: ControlFrame) -> None:
        if self.closed:
            return
        self._control.append(frame)
        self._wake.set()

    async def drained(self) -> bool:
        """Wait until everything queued so far is sent; False if it was flushed."""
        marker = Marker()
        await self.put(marker)
        return await marker.reached

    def _drop_stream(self) -> None:
        for frame in self._stream:
            if isinstance(frame, Marker) and not frame.reached.done():
                frame.reached.set_result(False)
        self._stream.clear()
        self._space.set()
        if self._pacer is not None:
            self._pacer.reset()

    async def run(self) -> None:
        """The single writer. Returns after a `CloseSocket` or a transport failure."""
        try:
            while True:
                if self._control:
                    frame = self._control.popleft()
                    if isinstance(frame, Urgent):
                        await self._transport.send_text(frame.text)
                        continue
                    self._drop_stream()
                    if isinstance(frame, CloseSocket):
                        self.closed = True
                        self.close_code = frame.code
                        await self._transport.close(frame.code, frame.reason)
                        return
                    for text in frame.then:
                        await self._transport.send_text(text)
                    continue
                if not self._stream:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                head = self._stream[0]
                if isinstance(head, SendAudio) and self._pacer is not None:
                    wait = self._pacer.delay(self._clock())
                    if wait > 0:
                        self._wake.clear()
                        # A control frame wakes us early; new stream frames re-check.
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), timeout=wait)
                        continue
                self._stream.popleft()
                if len(self._stream) < self._max:
                    self._space.set()
                if isinstance(head, SendText):
                    await self._transport.send_text(head.text)
                elif isinstance(head, SendAudio):
                    await self._transport.send_bytes(head.data)
                    if self._pacer is not None:
                        self._pacer.sent(self._clock())
                    if self._on_audio_sent is not None:
                        self._on_audio_sent()
                elif isinstance(head, SendBytes):
                    await self._transport.send_bytes(head.data)
                elif not head.reached.done():
                    head.reached.set_result(True)
        except (OSError, RuntimeError, ConnectionError) as exc:
            # The peer went away mid-send; the reader will see the disconnect.
            log.debug("writer stopped: %s", exc)
        finally:
            self.closed = True
            self._drop_stream()
            self._space.set()
