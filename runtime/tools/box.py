"""The tool executor one session holds: every tool the agent may use, one way to call them.

Tools come from sources (the Dot's MCP tools, built-ins, webhooks, remote MCP
servers), each a small `ToolSource`. `ToolBox` is the one seam the rest of the
runtime uses — the pipeline's tool loop and the speech-to-speech bridge alike:

    box.specs()                            -> [ToolSpec]  (API-safe names, JSON schemas)
    await box.call(name, arguments, id)    -> ToolResult  (never raises)

`call` maps the API name back to the real tool exactly, parses and checks the
arguments against the tool's schema before anything is sent, enforces the
per-turn call budget and the per-call timeout, turns every failure into an
error result the model can read, and reports each call (tool, redacted
arguments, duration, result size, error) to `on_call` for the turn's events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.pipeline.interfaces import ToolResult, ToolSpec
from runtime.tools.names import NameMap
from shared.tool_schema import argument_problems, parse_arguments

log = logging.getLogger("opendot.runtime.tools")

MAX_OUTPUT_CHARS = 8192  # what one tool result may put in front of the model
_SENSITIVE_KEY = re.compile(r"pass|secret|token|api[-_]?key|auth|credential", re.IGNORECASE)
_REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class ToolDef:
    key: str  # unique in the box: "<source>:<name>"
    name: str  # the tool's own name (what its server calls it)
    source: str  # device | builtin | webhook | mcp
    description: str
    parameters: Mapping[str, Any]
    timeout_s: float | None = None  # None: the box's per-call timeout


@dataclass(frozen=True, slots=True)
class ToolOutput:
    text: str
    is_error: bool = False


class ToolError(Exception):
    """A tool could not run; the message is shown to the model as the result."""


class ToolSource(Protocol):
    def tools(self) -> Sequence[ToolDef]: ...

    async def invoke(self, tool: ToolDef, arguments: dict[str, Any]) -> ToolOutput: ...


@dataclass(frozen=True, slots=True)
class ToolLimits:
    max_calls_per_turn: int = 5
    call_timeout_s: float = 10.0
    max_steps: int = 4  # model requests that may end in tool calls, per turn


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One tool call, as the turn's event records it."""

    tool: str
    source: str
    call_id: str
    arguments: Mapping[str, Any]
    duration_ms: float
    result_bytes: int
    error: str | None = None

    def to_event(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "source": self.source,
            "callId": self.call_id,
            "arguments": dict(self.arguments),
            "durationMs": round(self.duration_ms, 1),
            "resultBytes": self.result_bytes,
            "error": self.error,
        }


def redact_arguments(value: Any, secrets: Sequence[str], depth: int = 0) -> Any:
    """Arguments fit for a record: sensitive keys and known secret values masked,
    long strings cut, deep nesting flattened."""
    if depth > 4:
        return "…"
    if isinstance(value, Mapping):
        return {
            str(k): _REDACTED
            if _SENSITIVE_KEY.search(str(k))
            else redact_arguments(v, secrets, depth + 1)
            for k, v in list(value.items())[:32]
        }
    if isinstance(value, list):
        return [redact_arguments(v, secrets, depth + 1) for v in value[:32]]
    if isinstance(value, str):
        for secret in secrets:
            if secret and secret in value:
                value = value.replace(secret, _REDACTED)
        return value if len(value) <= 200 else value[:199] + "…"
    return value


class ToolBox:
    def __init__(
        self,
        sources: Sequence[ToolSource] = (),
        limits: ToolLimits | None = None,
        *,
        secrets: Sequence[str] = (),
        on_call: Callable[[CallRecord], None] | None = None,
    ) -> None:
        self.sources = list(sources)
        self.limits = limits or ToolLimits()
        self._secrets = tuple(s for s in secrets if s)
        self.on_call = on_call
        self._names = NameMap()
        self._by_name: dict[str, tuple[ToolDef, ToolSource]] = {}
        self.calls_this_turn = 0

    def add_source(self, source: ToolSource) -> None:
        self.sources.append(source)

    def _index(self) -> list[ToolSpec]:
        specs: list[ToolSpec] = []
        by_name: dict[str, tuple[ToolDef, ToolSource]] = {}
        for source in self.sources:
            for tool in source.tools():
                name = self._names.add(tool.key, tool.name)
                if name in by_name:
                    continue
                by_name[name] = (tool, source)
                specs.append(ToolSpec(name, tool.description, tool.parameters))
        self._by_name = by_name
        return specs

    def specs(self) -> list[ToolSpec]:
        """What the model is offered now (device tools appear once the Dot listed them)."""
        return self._index()

    def begin_turn(self) -> None:
        self.calls_this_turn = 0

    @property
    def budget_left(self) -> int:
        return max(0, self.limits.max_calls_per_turn - self.calls_this_turn)

    def real_name(self, name: str) -> str | None:
        found = self._by_name.get(name)
        return found[0].name if found is not None else None

    async def call(
        self, name: str, arguments: str | Mapping[str, Any] | None, call_id: str = ""
    ) -> ToolResult:
        """Run one call the model asked for; every outcome is a result, never an exception."""
        started = time.perf_counter()
        found = self._by_name.get(name)
        if found is None:
            self._index()
            found = self._by_name.get(name)
        tool, source = found if found is not None else (None, None)
        parsed = parse_arguments(arguments)
        shown: Mapping[str, Any] = (
            redact_arguments(parsed, self._secrets) if isinstance(parsed, dict) else {}
        )
        output: ToolOutput
        if tool is None or source is None:
            output = ToolOutput(f"There is no tool named {name}.", True)
        elif self.calls_this_turn >= self.limits.max_calls_per_turn:
            output = ToolOutput(
                f"The limit of {self.limits.max_calls_per_turn} tool calls for this turn is "
                "reached; answer with what you have.",
                True,
            )
        elif isinstance(parsed, str):
            output = ToolOutput(f"Not called: {parsed}.", True)
        else:
            problems = argument_problems(tool.parameters, parsed)
            if problems:
                output = ToolOutput(f"Not called: {'; '.join(problems)}.", True)
            else:
                self.calls_this_turn += 1
                output = await self._invoke(tool, source, parsed)
        text = (
            output.text
            if len(output.text) <= MAX_OUTPUT_CHARS
            else (output.text[: MAX_OUTPUT_CHARS - 1] + "…")
        )
        if self.on_call is not None:
            self.on_call(
                CallRecord(
                    tool=tool.name if tool is not None else name,
                    source=tool.source if tool is not None else "unknown",
                    call_id=call_id,
                    arguments=shown,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    result_bytes=len(text.encode()),
                    error=text if output.is_error else None,
                )
            )
        return ToolResult(call_id, name, text, output.is_error)

    async def _invoke(
        self, tool: ToolDef, source: ToolSource, arguments: dict[str, Any]
    ) -> ToolOutput:
        timeout = tool.timeout_s or self.limits.call_timeout_s
        try:
            async with asyncio.timeout(timeout):
                return await source.invoke(tool, arguments)
        except TimeoutError:
            return ToolOutput(f"{tool.name} did not answer within {timeout:g} s.", True)
        except ToolError as exc:
            return ToolOutput(str(exc) or f"{tool.name} failed.", True)
        except Exception as exc:
            # A broken source costs this call, never the turn.
            log.warning("tool %s failed: %s", tool.name, exc, exc_info=True)
            return ToolOutput(f"{tool.name} failed ({type(exc).__name__}).", True)


@dataclass
class StaticSource:
    """A fixed set of tools backed by async functions (built-ins, tests)."""

    handlers: dict[str, tuple[ToolDef, Callable[[dict[str, Any]], Any]]] = field(
        default_factory=dict
    )
    # Hides a tool for now (a built-in the device's own tool makes redundant).
    visible: Callable[[ToolDef], bool] = lambda _tool: True

    def add(self, tool: ToolDef, handler: Callable[[dict[str, Any]], Any]) -> None:
        self.handlers[tool.key] = (tool, handler)

    def tools(self) -> Sequence[ToolDef]:
        return [tool for tool, _ in self.handlers.values() if self.visible(tool)]

    async def invoke(self, tool: ToolDef, arguments: dict[str, Any]) -> ToolOutput:
        _, handler = self.handlers[tool.key]
        result = handler(arguments)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, ToolOutput):
            return result
        if isinstance(result, str):
            return ToolOutput(result)
        return ToolOutput(json.dumps(result, ensure_ascii=False, default=str))
