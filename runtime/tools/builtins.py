"""Built-in tools the runtime answers itself: the time, the Dot's status, ending the
conversation, and remembering or forgetting a fact in the device's memory.

Each is on unless the agent's `tools.builtins` switches it off. They act through
`SessionHooks`, the little a session lends them, so the tools stay testable
without a socket.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runtime.tools.box import StaticSource, ToolDef, ToolError, ToolOutput
from runtime.tools.device import STATUS_TOOL, DeviceMcp
from shared.tool_schema import object_schema

FACT = {"type": "string", "minLength": 1, "maxLength": 200}


@dataclass
class SessionHooks:
    timezone: str
    end_conversation: Callable[[], None]
    status: Callable[[], Mapping[str, Any]]
    device: DeviceMcp | None = None
    # remember(fact) / forget(text) -> the facts now kept; None when there is no device memory.
    change_facts: Callable[[str | None, str | None], Awaitable[list[str]]] | None = None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def current_time(timezone: str, now: datetime | None = None) -> dict[str, str]:
    local = (now or datetime.now(UTC)).astimezone(_zone(timezone))
    return {
        "date": local.strftime("%A, %d %B %Y"),
        "time": local.strftime("%H:%M"),
        "timezone": timezone if _zone(timezone).key == timezone else "UTC",
        "iso": local.isoformat(timespec="seconds"),
    }


def builtin_source(switches: Mapping[str, bool], hooks: SessionHooks) -> StaticSource:
    def redundant(tool: ToolDef) -> bool:
        # The Dot's own status tool says more than the runtime knows; offer only that.
        device = hooks.device
        return tool.name == "get_device_status" and device is not None and device.has(STATUS_TOOL)

    source = StaticSource(visible=lambda tool: not redundant(tool))

    def tool(name: str, description: str, schema: Mapping[str, Any] | None = None) -> ToolDef:
        return ToolDef(f"builtin:{name}", name, "builtin", description, schema or object_schema({}))

    if switches.get("datetime", True):
        source.add(
            tool("get_current_time", "The current date and time where the user lives."),
            lambda _args: current_time(hooks.timezone),
        )
    if switches.get("deviceStatus", True):

        async def status(_args: dict[str, Any]) -> ToolOutput:
            device = hooks.device
            if device is not None and device.has(STATUS_TOOL):
                return await device.call(STATUS_TOOL, {}, 10.0)
            return ToolOutput(_json(hooks.status()))

        source.add(
            tool(
                "get_device_status",
                "The state of the device the user is talking through (connection, firmware, "
                "volume and battery when the device reports them).",
            ),
            status,
        )
    if switches.get("endConversation", True):

        def end(_args: dict[str, Any]) -> str:
            hooks.end_conversation()
            return "The conversation ends after your reply: say a short goodbye."

        source.add(
            tool(
                "end_conversation",
                "End the conversation when the user says goodbye or asks you to stop listening.",
            ),
            end,
        )
    if switches.get("memory", True) and hooks.change_facts is not None:
        change = hooks.change_facts

        async def remember(args: dict[str, Any]) -> str:
            facts = await change(str(args["fact"]), None)
            return f"Remembered. {len(facts)} facts are kept on this device."

        async def forget(args: dict[str, Any]) -> str:
            facts = await change(None, str(args["about"]))
            return f"Forgotten. {len(facts)} facts are kept on this device."

        source.add(
            tool(
                "remember_fact",
                "Keep a short fact the user asked you to remember, for later conversations "
                "on this device.",
                object_schema({"fact": FACT}, ["fact"]),
            ),
            remember,
        )
        source.add(
            tool(
                "forget_fact",
                "Forget every remembered fact that mentions the given words.",
                object_schema({"about": FACT}, ["about"]),
            ),
            forget,
        )
    return source


def _json(value: Mapping[str, Any]) -> str:
    import json

    try:
        return json.dumps(dict(value), ensure_ascii=False, default=str)
    except (TypeError, ValueError) as exc:
        raise ToolError("the status could not be read") from exc
