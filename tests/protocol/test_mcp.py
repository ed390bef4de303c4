"""MCP envelopes: firmware payloads in, literal JSON-RPC out, both directions."""

from __future__ import annotations

import json

import pytest

from runtime.protocol import mcp
from runtime.protocol.device import Mcp, McpOut, parse_device_message
from runtime.protocol.errors import ProtocolError
from tests.protocol import firmware_fixtures as fw

# What the firmware's McpServer really answers (main/mcp_server.cc): the error
# reply has no code, the user-only tool carries its audience annotation.
FIRMWARE_ERROR = '{"jsonrpc":"2.0","id":3,"error":{"message":"Unknown tool: self.nope"}}'
FIRMWARE_CALL_OK = (
    '{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"true"}],"isError":false}}'
)
FIRMWARE_USER_ONLY_PAGE = (
    '{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"self.reboot","description":'
    '"Reboot the system","inputSchema":{"type":"object","properties":{}},'
    '"annotations":{"audience":["user"]}}],"nextCursor":"self.upgrade_firmware"}}'
)


def _payload(text: str) -> object:
    return json.loads(text)


def test_requests_serialize_as_the_firmware_reads_them() -> None:
    vision = mcp.Vision("https://rt.example/vision/explain", "odvt.x")
    assert mcp.initialize(1, vision).to_payload() == {
        "jsonrpc": "2.0",
        "method": "initialize",
        "params": {
            "protocolVersion": "2024-11-05",
            "capabilities": {
                "vision": {"url": "https://rt.example/vision/explain", "token": "odvt.x"}
            },
            "clientInfo": {"name": "opendot-runtime", "version": "1"},
        },
        "id": 1,
    }
    assert mcp.initialize(2).to_payload()["params"]["capabilities"] == {}
    assert mcp.tools_list(3).to_payload()["params"] == {"cursor": ""}
    assert mcp.tools_list(4, "self.x", with_user_tools=True).to_payload()["params"] == {
        "cursor": "self.x",
        "withUserTools": True,
    }
    call = mcp.tools_call(5, "self.audio_speaker.set_volume", {"volume": 40})
    assert call.to_payload() == {
        "jsonrpc": "2.0",
        "method": "tools/call",
        "params": {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 40}},
        "id": 5,
    }
    assert mcp.Request(6, "ping").to_payload() == {"jsonrpc": "2.0", "method": "ping", "id": 6}


def test_envelope_round_trip_through_the_device_message() -> None:
    out = McpOut(mcp.tools_list(7).to_payload()).to_json("sid")
    back = parse_device_message(out.replace('"type":"mcp"', '"type":"mcp"'))
    assert isinstance(back, Mcp)
    assert mcp.parse_payload(back.payload) == mcp.tools_list(7)


def test_firmware_initialize_and_tools_page() -> None:
    init = parse_device_message(fw.MCP_INITIALIZE_RESULT)
    assert isinstance(init, Mcp)
    parsed = mcp.parse_payload(init.payload)
    assert isinstance(parsed, mcp.Result) and parsed.id == 1
    info = mcp.parse_initialize(parsed.result)
    assert info.protocol_version == "2024-11-05"
    assert info.name == "bread-compact-wifi"
    tools = parse_device_message(fw.MCP_TOOLS_LIST_RESULT)
    assert isinstance(tools, Mcp)
    page_result = mcp.parse_payload(tools.payload)
    assert isinstance(page_result, mcp.Result)
    page = mcp.parse_tools_page(page_result.result)
    assert isinstance(page, mcp.ToolsPage)
    assert [t.name for t in page.tools] == [
        "self.get_device_status",
        "self.audio_speaker.set_volume",
    ]
    assert page.next_cursor is None and not any(t.user_only for t in page.tools)


def test_user_only_tools_and_cursor() -> None:
    parsed = mcp.parse_payload(_payload(FIRMWARE_USER_ONLY_PAGE))
    assert isinstance(parsed, mcp.Result)
    page = mcp.parse_tools_page(parsed.result)
    assert isinstance(page, mcp.ToolsPage)
    assert page.tools[0].user_only and page.next_cursor == "self.upgrade_firmware"
    entry = mcp.tool_entry(page.tools[0])
    assert entry["annotations"] == {"audience": ["user"]}
    assert "annotations" not in mcp.tool_entry(mcp.DeviceTool("a", "", {"type": "object"}))


def test_an_audience_of_both_is_not_user_only() -> None:
    page = mcp.parse_tools_page(
        {"tools": [{"name": "t", "annotations": {"audience": ["user", "assistant"]}}]}
    )
    assert isinstance(page, mcp.ToolsPage) and not page.tools[0].user_only
    assert page.tools[0].input_schema == {"type": "object", "properties": {}}


def test_malformed_tools_are_dropped_with_reasons() -> None:
    page = mcp.parse_tools_page(
        {
            "tools": [
                7,
                {"description": "nameless"},
                {"name": "x" * 200},
                {"name": "arr", "inputSchema": {"type": "array"}},
                {"name": "str", "inputSchema": "object"},
                {"name": "big", "inputSchema": {"type": "object", "d": "x" * 9000}},
                {"name": "nan", "inputSchema": {"type": "object", "x": float("nan")}},
                {"name": "ok", "description": "d" * 3000, "annotations": "user"},
            ],
            "nextCursor": "",
        }
    )
    assert isinstance(page, mcp.ToolsPage)
    assert [t.name for t in page.tools] == ["ok"]
    assert len(page.tools[0].description) == mcp.MAX_DESCRIPTION_CHARS
    assert page.next_cursor is None
    reasons = " | ".join(page.dropped)
    for fragment in (
        "not an object",
        "without a name",
        "longer than",
        "not an object schema",
        "larger than",
        "not JSON",
    ):
        assert fragment in reasons
    assert mcp.parse_tools_page({"tools": {}}) == ProtocolError(
        "tools/list result without a tools array"
    )


def test_call_results_become_text() -> None:
    parsed = mcp.parse_payload(_payload(FIRMWARE_CALL_OK))
    assert isinstance(parsed, mcp.Result)
    assert mcp.parse_call_result(parsed.result) == mcp.CallResult("true", False)
    mixed = mcp.parse_call_result(
        {
            "content": [
                {"type": "text", "text": "a"},
                {"type": "image", "mimeType": "image/jpeg", "data": "..."},
                {"type": "audio"},
                {"type": "resource", "resource": {"text": "r"}},
                {"type": "resource", "resource": {"uri": "file:///x"}},
                {"type": "resource", "resource": 3},
                {"type": "mystery"},
                "junk",
            ],
            "isError": True,
        }
    )
    assert mixed == mcp.CallResult(
        "a\n[image image/jpeg omitted]\n[audio audio omitted]\nr\n[resource file:///x]", True
    )
    structured = mcp.parse_call_result({"content": [], "structuredContent": {"v": 1}})
    assert structured.text == '{"v": 1}'
    assert mcp.parse_call_result({"structuredContent": {1j}}).text == ""
    long = mcp.parse_call_result({"content": [{"type": "text", "text": "y" * 20000}]})
    assert len(long.text) == mcp.MAX_RESULT_CHARS and long.text.endswith("…")
    assert mcp.parse_call_result({}) == mcp.CallResult("", False)


def test_errors_with_and_without_code() -> None:
    firmware = mcp.parse_payload(_payload(FIRMWARE_ERROR))
    assert firmware == mcp.Error(3, "Unknown tool: self.nope")
    assert isinstance(firmware, mcp.Error)
    assert mcp.call_error(firmware) == mcp.CallResult("error: Unknown tool: self.nope", True)
    coded = mcp.parse_payload({"jsonrpc": "2.0", "id": 4, "error": {"code": -32601, "message": ""}})
    assert coded == mcp.Error(4, "error", -32601)
    assert isinstance(coded, mcp.Error)
    assert mcp.call_error(coded).text == "error -32601: error"
    odd = mcp.parse_payload({"jsonrpc": "2.0", "id": None, "error": "boom"})
    assert odd == mcp.Error(None, "boom")
    assert mcp.parse_payload({"jsonrpc": "2.0", "id": 1, "error": ""}) == mcp.Error(1, "error")
    assert mcp.Error(4, "m", -1).to_payload() == {
        "jsonrpc": "2.0",
        "id": 4,
        "error": {"message": "m", "code": -1},
    }
    assert mcp.Error(4, "m").to_payload()["error"] == {"message": "m"}


def test_notifications_and_requests_from_the_device() -> None:
    note = mcp.parse_payload(
        {"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {"a": 1}}
    )
    assert note == mcp.Notification("notifications/tools/list_changed", {"a": 1})
    assert isinstance(note, mcp.Notification)
    assert note.to_payload()["params"] == {"a": 1}
    assert mcp.Notification("n").to_payload() == {"jsonrpc": "2.0", "method": "n"}
    request = mcp.parse_payload({"jsonrpc": "2.0", "method": "ping", "id": 9.0})
    assert request == mcp.Request(9, "ping")


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ([1], "not a JSON object"),
        ({"jsonrpc": "1.0", "id": 1, "result": {}}, "not JSON-RPC 2.0"),
        ({"jsonrpc": "2.0", "method": "m", "params": [1], "id": 1}, "params must be an object"),
        ({"jsonrpc": "2.0", "method": "m", "id": "abc"}, "id must be a number"),
        ({"jsonrpc": "2.0", "method": "m", "id": True}, "id must be a number"),
        ({"jsonrpc": "2.0", "method": "m", "id": 1.5}, "id must be a number"),
        ({"jsonrpc": "2.0", "result": {}}, "without a numeric id"),
        ({"jsonrpc": "2.0", "id": 1, "result": []}, "without a result object"),
        ({"jsonrpc": "2.0", "id": 1, "error": None}, "without a result object"),
    ],
)
def test_malformed_payloads(payload: object, fragment: str) -> None:
    parsed = mcp.parse_payload(payload)
    assert isinstance(parsed, ProtocolError) and fragment in parsed.message
    assert not parsed.fatal


def test_initialize_is_liberal() -> None:
    assert mcp.parse_initialize({}) == mcp.ServerInfo("", "", "")
    assert mcp.parse_initialize({"serverInfo": "x", "protocolVersion": 5}) == mcp.ServerInfo(
        "", "", ""
    )


def test_the_device_side_builders() -> None:
    init = mcp.initialize_result(1, "dot-s3", "1.7.2").to_payload()
    parsed = mcp.parse_payload(init)
    assert isinstance(parsed, mcp.Result)
    assert mcp.parse_initialize(parsed.result) == mcp.ServerInfo("2024-11-05", "dot-s3", "1.7.2")
    result = mcp.parse_payload(mcp.text_result(2, "false", is_error=True).to_payload())
    assert isinstance(result, mcp.Result)
    assert mcp.parse_call_result(result.result) == mcp.CallResult("false", True)
    request = mcp.initialize(3, mcp.Vision("http://h/v", "t"))
    assert mcp.parse_vision(request.params) == mcp.Vision("http://h/v", "t")
    assert mcp.parse_vision({"capabilities": {"vision": {"url": "http://h/v"}}}) == mcp.Vision(
        "http://h/v", ""
    )
    assert mcp.parse_vision(None) is None
    assert mcp.parse_vision({"capabilities": {"vision": {"url": 1}}}) is None
    assert mcp.parse_vision({"capabilities": []}) is None
