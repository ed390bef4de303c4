"""Conversation memory: bounded by turns and by an approximate token budget.

A device's conversation outlives its sockets (the firmware closes the socket
after every turn): the platform API returns the persisted memory on verify, and
`PendingTurns` adds the turns this process recorded but has not yet flushed, so
a device that reconnects 300 ms after a turn still remembers it even while the
API is slow or down.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from runtime.pipeline.interfaces import Message

CHARS_PER_TOKEN = 4  # the usual rough figure for English text


def approx_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


class ConversationMemory:
    def __init__(self, max_turns: int = 12, max_tokens: int = 2000) -> None:
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self._turns: list[tuple[str, str]] = []  # (user, assistant)

    @classmethod
    def from_messages(
        cls, messages: Iterable[Mapping[str, object]], max_turns: int = 12, max_tokens: int = 2000
    ) -> ConversationMemory:
        """Pair up `{role, content}` records (the verify answer) into turns."""
        memory = cls(max_turns, max_tokens)
        user: str | None = None
        for item in messages:
            role, content = item.get("role"), item.get("content")
            if not isinstance(content, str):
                continue
            if role == "user":
                if user is not None:
                    memory.add(user, "")
                user = content
            elif role == "assistant":
                memory.add(user or "", content)
                user = None
        if user is not None:
            memory.add(user, "")
        return memory

    def __len__(self) -> int:
        return len(self._turns)

    def add(self, user: str, assistant: str) -> None:
        self._turns.append((user, assistant))
        self._trim()

    def clear(self) -> None:
        self._turns.clear()

    def _trim(self) -> None:
        if self.max_turns <= 0 or self.max_tokens <= 0:
            self._turns.clear()
            return
        del self._turns[: max(0, len(self._turns) - self.max_turns)]
        budget = self.max_tokens
        keep = 0
        for user, assistant in reversed(self._turns):
            cost = approx_tokens(user) + approx_tokens(assistant)
            if cost > budget:
                break
            budget -= cost
            keep += 1
        del self._turns[: len(self._turns) - keep]

    def messages(self) -> list[Message]:
        out: list[Message] = []
        for user, assistant in self._turns:
            if user:
                out.append(Message("user", user))
            if assistant:
                out.append(Message("assistant", assistant))
        return out

    def turns(self) -> list[tuple[str, str]]:
        return list(self._turns)


@dataclass(frozen=True, slots=True)
class PendingTurn:
    turn_id: str
    user: str
    assistant: str


class PendingTurns:
    """Completed device turns recorded here and not yet confirmed by the API.

    A confirmed turn stays for `grace_s` more: a verify that was already in flight
    when the turn was stored may have read the memory without it, and the merge
    after that verify must still find it. A verify that began after the
    confirmation read a memory that includes the turn (or rightly lacks it, after
    a reset), so the merge leaves it out. Bounded per device and in devices (least
    recently used go first), so a long API outage cannot grow it without limit.
    """

    def __init__(
        self,
        per_device: int = 12,
        max_devices: int = 10_000,
        *,
        grace_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_device = per_device
        self._max_devices = max_devices
        self._grace_s = grace_s
        self._clock = clock
        self._by_device: OrderedDict[str, list[PendingTurn]] = OrderedDict()
        self._device_of: dict[str, str] = {}
        self._confirmed: dict[str, float] = {}  # turn id -> when the API stored it, oldest first

    def add(self, device_id: str, turn: PendingTurn) -> None:
        turns = self._by_device.pop(device_id, [])
        turns.append(turn)
        for dropped in turns[: max(0, len(turns) - self._per_device)]:
            self._device_of.pop(dropped.turn_id, None)
            self._confirmed.pop(dropped.turn_id, None)
        turns = turns[-self._per_device :]
        self._by_device[device_id] = turns
        self._device_of[turn.turn_id] = device_id
        while len(self._by_device) > self._max_devices:
            _, evicted = self._by_device.popitem(last=False)
            for t in evicted:
                self._device_of.pop(t.turn_id, None)
                self._confirmed.pop(t.turn_id, None)

    def persisted(self, turn_ids: Iterable[str]) -> None:
        now = self._clock()
        for turn_id in turn_ids:
            if turn_id in self._device_of and turn_id not in self._confirmed:
                self._confirmed[turn_id] = now
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._confirmed:
            turn_id, at = next(iter(self._confirmed.items()))
            if now - at < self._grace_s:
                return
            del self._confirmed[turn_id]
            device_id = self._device_of.pop(turn_id, None)
            if device_id is None:
                continue
            remaining = [t for t in self._by_device.get(device_id, []) if t.turn_id != turn_id]
            if remaining:
                self._by_device[device_id] = remaining
            else:
                self._by_device.pop(device_id, None)

    def forget(self, device_id: str) -> None:
        for t in self._by_device.pop(device_id, []):
            self._device_of.pop(t.turn_id, None)
            self._confirmed.pop(t.turn_id, None)

    def for_device(self, device_id: str) -> list[PendingTurn]:
        self._expire(self._clock())
        return list(self._by_device.get(device_id, []))

    def merge_into(
        self, device_id: str, memory: ConversationMemory, read_at: float | None = None
    ) -> None:
        """Append pending turns the persisted memory, read at `read_at` (this class's
        clock; None: now), does not show yet."""
        read_at = self._clock() if read_at is None else read_at
        # A turn stored between the API's read and this merge may show up in both;
        # an identical question and answer earlier on is rare, and skipping it harmless.
        known = set(memory.turns())
        for turn in self.for_device(device_id):
            confirmed = self._confirmed.get(turn.turn_id)
            if confirmed is not None and confirmed <= read_at:
                continue
            if (turn.user, turn.assistant) in known:
                continue
            memory.add(turn.user, turn.assistant)
