"""How much of the assistant's audio a person has really heard (pure, clock-free).

The provider sends audio far faster than it plays; the runtime queues it and
the outbox paces it to the device, whose play buffer the outbox's `Pacer`
models. On a barge-in, the model must be told where the person stopped
hearing it (`conversation.item.truncate`), or it believes it said the rest.

`PlaybackLedger` follows each output item's frames from queued to sent; the
caller adds how much of what was sent the device has not played yet (the
pacer's `drained_in`). Played = sent - not yet played, per item, in order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class _Segment:
    item_id: str
    queued: int = 0
    sent: int = 0


class PlaybackLedger:
    def __init__(self, frame_ms: int = 60) -> None:
        self.frame_ms = frame_ms
        self._segments: deque[_Segment] = deque()

    def queued(self, item_id: str, frames: int = 1) -> None:
        """`frames` of `item_id` joined the send queue (after everything queued before)."""
        if frames <= 0:
            return
        if self._segments and self._segments[-1].item_id == item_id:
            self._segments[-1].queued += frames
        else:
            self._segments.append(_Segment(item_id, frames))

    def sent(self) -> None:
        """One audio frame left for the device: the oldest queued one."""
        for segment in self._segments:
            if segment.sent < segment.queued:
                segment.sent += 1
                return

    def flushed(self) -> None:
        """The queue was dropped: what was not sent never will be."""
        for segment in self._segments:
            segment.queued = segment.sent

    def reset(self) -> None:
        self._segments.clear()

    def playing(self) -> str | None:
        """The item the device is (or was last) playing."""
        for segment in reversed(self._segments):
            if segment.sent:
                return segment.item_id
        return None

    def played_ms(self, item_id: str, unplayed_ms: float) -> int:
        """Milliseconds of `item_id` heard, given `unplayed_ms` of sent audio the device
        still holds (it plays in order, so that is the tail of what was sent)."""
        sent_after = 0.0  # audio of later items, played after this one
        found: _Segment | None = None
        for segment in reversed(self._segments):
            if segment.item_id == item_id:
                found = segment
                break
            sent_after += segment.sent * self.frame_ms
        if found is None:
            return 0
        own_unplayed = max(0.0, unplayed_ms - sent_after)
        return int(max(0.0, found.sent * self.frame_ms - own_unplayed))
