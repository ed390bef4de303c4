"""The tool loop of one turn: ask the model, run the calls it makes, ask again.

Text deltas pass straight through (the `<chunk>` parser and TTS start on them
as usual); a `ToolCall` starts running the moment the model has finished
writing its arguments, so parallel calls overlap each other and the rest of
the model's stream. When the step's stream ends, the loop waits for the calls,
appends the assistant's calls and the results (as tool results, never as
instructions) and asks again. Limits: at most `max_steps` requests that may
end in tool calls; after that, or when the call budget is spent, the request
says `tool_choice: none`, so the model has to answer in words.

While calls run longer than `filler_after_s`, the loop yields one `Filler`
("One moment."), which the reply speaks as its own sentence — once per turn,
and only when the agent asked for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from runtime.pipeline.interfaces import (
    LLM,
    ChatItem,
    LlmRequest,
    ToolCall,
    ToolCalls,
    ToolResult,
)
from runtime.tools.box import ToolBox

FILLER_AFTER_S = 1.0


@dataclass(frozen=True, slots=True)
class Filler:
    text: str


async def _refuse(call: ToolCall) -> ToolResult:
    return ToolResult(call.call_id, call.name, "No tools are available in this turn.", True)


async def run_tool_loop(
    llm: LLM,
    request: LlmRequest,
    box: ToolBox | None,
    *,
    filler: str | None = None,
    filler_after_s: float = FILLER_AFTER_S,
) -> AsyncIterator[str | Filler]:
    messages: list[ChatItem] = list(request.messages)
    max_steps = box.limits.max_steps if box is not None else 0
    if box is not None:
        box.begin_turn()
    for step in range(max_steps + 1):
        specs = box.specs() if box is not None else []
        may_call = bool(specs) and step < max_steps and box is not None and box.budget_left > 0
        ask = replace(
            request,
            messages=list(messages),
            tools=specs,
            tool_choice="auto" if may_call else "none",
        )
        said: list[str] = []
        calls: list[ToolCall] = []
        running: list[asyncio.Task[ToolResult]] = []
        try:
            async for out in llm.stream(ask):
                if isinstance(out, str):
                    said.append(out)
                    yield out
                    continue
                calls.append(out)
                work = box.call(out.name, out.arguments, out.call_id) if box else _refuse(out)
                running.append(asyncio.create_task(work, name="tool-call"))
            if not calls:
                return
            _, pending = await asyncio.wait(running, timeout=filler_after_s)
            if pending and filler:
                yield Filler(filler)
                filler = None
            results = [await task for task in running]
        finally:
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        messages.append(ToolCalls(tuple(calls), "".join(said)))
        messages.extend(results)
