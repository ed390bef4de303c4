"""`@once` (process-wide engines) and `until_none` (a queue read as a stream)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from runtime.once import once
from runtime.session.turn import until_none
from tests.conftest import TEST_TIME_UNIT


def test_racing_threads_load_once_and_share_the_value() -> None:
    calls = 0
    inside = threading.Event()
    release = threading.Event()

    @once
    def engine() -> object:
        nonlocal calls
        calls += 1
        inside.set()
        assert release.wait(10 * TEST_TIME_UNIT)
        return object()

    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(engine())) for _ in range(4)]
    threads[0].start()
    assert inside.wait(10 * TEST_TIME_UNIT)  # the first caller is loading ...
    for thread in threads[1:]:
        thread.start()  # ... while three more ask for it
    release.set()
    for thread in threads:
        thread.join()
    assert calls == 1
    assert len(results) == 4 and all(r is results[0] for r in results)
    assert engine() is results[0]


def test_a_failed_load_is_tried_again() -> None:
    attempts: list[int] = []

    @once
    def flaky() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("model file busy")
        return 42

    with pytest.raises(OSError):
        flaky()
    assert flaky() == 42
    assert flaky() == 42
    assert len(attempts) == 2


def test_none_is_a_value_that_is_kept() -> None:
    calls: list[int] = []

    @once
    def nothing() -> None:
        calls.append(1)

    nothing()
    nothing()
    assert calls == [1]


async def test_until_none_yields_in_order_and_ends_at_the_mark() -> None:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    for item in (b"a", b"", b"c", None, b"after the end"):
        queue.put_nowait(item)
    assert [item async for item in until_none(queue)] == [b"a", b"", b"c"]
    assert queue.get_nowait() == b"after the end"  # nothing past the mark was taken


async def test_until_none_waits_for_the_producer() -> None:
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    stream = until_none(queue)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    assert not pending.done()
    queue.put_nowait(7)
    assert await pending == 7
    queue.put_nowait(None)
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
