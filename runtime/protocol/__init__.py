"""Wire formats of the voice runtime, as pure synchronous code (Sans-I/O).

Nothing here touches sockets, clocks or asyncio: bytes and text go in, typed
values come out, and malformed input comes back as a `ProtocolError` value
instead of an exception. The connection drivers in `runtime/` own every timer.

Modules: `framing` (device binary framing v1/v2/v3), `opus_packet` (RFC 6716
packet sanity), `device` (xiaozhi JSON messages both ways), `emotions`,
`browser` (the `/voice` messages), `chunks` (the streamed `<chunk>` parser).
"""

from runtime.protocol.errors import CloseCode, ProtocolError

__all__ = ["CloseCode", "ProtocolError"]
