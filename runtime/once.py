"""`@once`: a process-wide value built on first use, exactly once.

The offline engines (Silero, Whisper, Piper, espeak-ng) and the shared VAD
take from milliseconds to a second to load and are used from the event loop
and from worker threads (warm-up runs in a thread while sessions start), so
the first use must load them once even when two threads race. A load that
raises is not remembered: the next call tries again.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def once(load: Callable[[], T]) -> Callable[[], T]:
    lock = threading.Lock()
    value: list[T] = []  # empty until loaded; a list so that None can be a value

    @functools.wraps(load)
    def get() -> T:
        if not value:  # after the first load no lock is taken
            with lock:
                if not value:
                    value.append(load())
        return value[0]

    return get
