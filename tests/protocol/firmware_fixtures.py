"""Device messages exactly as the xiaozhi firmware (78/xiaozhi-esp32) sends them.

Written from the protocol notes (docs/protocols.md §3, the firmware's
`docs/websocket.md` and `main/protocols/websocket_protocol.cc` as summarised
in the research notes): the hello has no session_id, later messages echo the
server's, the wake-word detect carries the wake word, and MCP replies are
JSON-RPC 2.0. Kept as literal text so a change in our parser is tested
against what devices really put on the wire, not against our own serializer.
"""

from __future__ import annotations

SESSION = "1f0c6e1a-6b1e-4b7a-9a57-3d0e6a1c2b44"

HELLO_V1 = (
    '{"type":"hello","version":1,"features":{"mcp":true},"transport":"websocket",'
    '"audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}}'
)
HELLO_V3_AEC = (
    '{"type":"hello","version":3,"features":{"aec":true,"mcp":true,"glyph_push":false},'
    '"transport":"websocket","audio_params":{"format":"opus","sample_rate":16000,'
    '"channels":1,"frame_duration":60}}'
)
HELLO_GLYPHS = (
    '{"type":"hello","version":2,"features":{"mcp":true,"glyph_push":true},'
    '"text_font":{"bundle":"noto-v1","charset":"gb2312","size":16,"bpp":1},'
    '"transport":"websocket","audio_params":{"format":"opus","sample_rate":16000,'
    '"channels":1,"frame_duration":60}}'
)
LISTEN_DETECT = f'{{"session_id":"{SESSION}","type":"listen","state":"detect","text":"你好小智"}}'
LISTEN_START_AUTO = f'{{"session_id":"{SESSION}","type":"listen","state":"start","mode":"auto"}}'
LISTEN_START_MANUAL = (
    f'{{"session_id":"{SESSION}","type":"listen","state":"start","mode":"manual"}}'
)
LISTEN_START_REALTIME = (
    f'{{"session_id":"{SESSION}","type":"listen","state":"start","mode":"realtime"}}'
)
LISTEN_STOP = f'{{"session_id":"{SESSION}","type":"listen","state":"stop"}}'
ABORT_WAKE = f'{{"session_id":"{SESSION}","type":"abort","reason":"wake_word_detected"}}'
ABORT_PLAIN = f'{{"session_id":"{SESSION}","type":"abort"}}'
MCP_INITIALIZE_RESULT = (
    f'{{"session_id":"{SESSION}","type":"mcp","payload":{{"jsonrpc":"2.0","id":1,'
    '"result":{"protocolVersion":"2024-11-05","capabilities":{"tools":{}},'
    '"serverInfo":{"name":"bread-compact-wifi","version":"1.8.2"}}}}'
)
MCP_TOOLS_LIST_RESULT = (
    f'{{"session_id":"{SESSION}","type":"mcp","payload":{{"jsonrpc":"2.0","id":2,'
    '"result":{"tools":[{"name":"self.get_device_status","description":"Status",'
    '"inputSchema":{"type":"object","properties":{}}},{"name":"self.audio_speaker.set_volume",'
    '"description":"Set volume","inputSchema":{"type":"object","properties":{"volume":'
    '{"type":"integer","minimum":0,"maximum":100}},"required":["volume"]}}]}}}'
)
# Older firmware and third-party clients: no session_id, empty session_id.
LISTEN_START_NO_SESSION = '{"type":"listen","state":"start","mode":"auto"}'
LISTEN_STOP_EMPTY_SESSION = '{"session_id":"","type":"listen","state":"stop"}'

# A real 60 ms, 16 kHz Opus packet header as the firmware's encoder emits it:
# TOC 0x58 = config 11 (SILK wideband, 60 ms), mono, code 0 (one frame).
FIRMWARE_TOC_60MS = 0x58

# The firmware's OTA request (headers and body), for the simulator.
OTA_HEADERS = {
    "Activation-Version": "1",
    "Device-Id": "a0:b7:65:12:34:56",
    "Client-Id": "5b7e1c3a-9f2d-4c1e-8a6b-0d9e8f7a6b5c",
    "User-Agent": "bread-compact-wifi/1.8.2",
    "Accept-Language": "en-US",
    "Content-Type": "application/json",
}
