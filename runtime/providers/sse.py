"""Server-sent events, parsed incrementally (Sans-I/O).

Bytes go in through `feed`, complete events come out; events split across
network reads or several events in one read need no special case. Follows the
WHATWG rules the providers rely on: `data:` lines of one event are joined with
newlines, comment lines (`:`) are skipped, and CRLF, LF or CR end a line.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_EVENT_BYTES = 1 << 20  # one event larger than this is a broken stream, not a reply


class SseError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str


class SseParser:
    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []
        self._size = 0

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk
        events: list[SseEvent] = []
        while True:
            line, sep, rest = self._split_line(self._buffer)
            if not sep:
                break
            self._buffer = rest
            event = self._line(line.decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        if len(self._buffer) + self._size > MAX_EVENT_BYTES:
            raise SseError("server-sent event larger than 1 MiB")
        return events

    def finish(self) -> list[SseEvent]:
        """Flush an event the server did not end with a blank line."""
        tail = self.feed(b"\n\n") if self._buffer or self._data else []
        return tail

    @staticmethod
    def _split_line(buffer: bytes) -> tuple[bytes, bytes, bytes]:
        lf, cr = buffer.find(b"\n"), buffer.find(b"\r")
        if cr == -1 or (lf != -1 and lf < cr):
            if lf == -1:
                return b"", b"", buffer
            return buffer[:lf], b"\n", buffer[lf + 1 :]
        if cr + 1 == len(buffer):
            return b"", b"", buffer  # wait: this CR may be the first half of a CRLF
        skip = 2 if buffer[cr + 1] == 0x0A else 1
        return buffer[:cr], b"\r", buffer[cr + skip :]

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SseEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data, self._size = "", [], 0
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._size += len(value)
        elif name == "event":
            self._event = value
        return None
