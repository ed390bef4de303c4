"""Pacer arithmetic and the outbox's priority rules, without sockets."""

from __future__ import annotations

import asyncio

from runtime.session.outbox import (
    CloseSocket,
    Flush,
    Marker,
    Outbox,
    Pacer,
    SendAudio,
    SendText,
    Transport,
)


def test_pacer_prebuffers_then_paces() -> None:
    p = Pacer(frame_s=0.06, lead_frames=5)
    now = 100.0
    for _ in range(5):
        assert p.delay(now) == 0
        p.sent(now)
    assert abs(p.delay(now) - 0.06) < 1e-9
    now += 0.06
    assert p.delay(now) < 1e-9
    p.sent(now)
    assert p.drained_in(now) > 0.29
    # After a pause longer than the buffer the device is empty: pre-buffer again.
    now += 10
    assert p.delay(now) == 0 and p.drained_in(now) == 0
    p.reset()
    assert p.buffer_end == 0


class Recorder(Transport):
    def __init__(self) -> None:
        self.sent: list[object] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def close(self, code: int, reason: str) -> None:
        self.sent.append((code, reason))


async def test_flush_overtakes_queued_audio_and_nothing_follows_it() -> None:
    transport = Recorder()
    clock = [0.0]
    outbox = Outbox(transport, pacer=Pacer(0.06, 2), clock=lambda: clock[0])
    writer = asyncio.create_task(outbox.run())
    outbox.put_nowait(SendText("start"))
    for i in range(10):
        outbox.put_nowait(SendAudio(bytes([i])))
    marker = Marker()
    outbox.put_nowait(marker)
    await asyncio.sleep(0.01)  # the clock is frozen: only the pre-buffer goes out
    assert transport.sent == ["start", b"\x00", b"\x01"]
    outbox.control(Flush(then=("stop",)))
    await asyncio.sleep(0.01)
    assert transport.sent[-1] == "stop"
    assert await marker.reached is False  # dropped by the flush
    outbox.control(CloseSocket(1000, "bye"))
    await writer
    assert transport.sent[-1] == (1000, "bye")
    assert outbox.closed
    outbox.put_nowait(SendText("late"))  # ignored after close
    late = Marker()
    outbox.put_nowait(late)
    assert late.reached.result() is False


async def test_bounded_queue_makes_producers_wait() -> None:
    transport = Recorder()
    outbox = Outbox(transport, max_stream=2)
    for i in range(2):
        await outbox.put(SendText(str(i)))
    blocked = asyncio.create_task(outbox.put(SendText("2")))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    writer = asyncio.create_task(outbox.run())
    await asyncio.wait_for(blocked, 1)
    assert await outbox.drained()
    assert transport.sent == ["0", "1", "2"]
    outbox.control(CloseSocket())
    await writer
