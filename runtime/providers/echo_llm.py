"""The honest stand-in for a language model: it repeats what it heard.

Used only when an agent has no LLM configured (no keys), so a fresh install
still completes a spoken turn end to end. Every reply starts with "(echo)" so
nobody mistakes it for an answer, and it is streamed in `<chunk>` form in
small deltas, exercising the same parser and sentence pipeline as a real model.
When the request carries an earlier user message (conversation memory), the
reply repeats that too, so memory across turns is audible without a model.

Tool demo mode: when the request offers a volume tool (the Dot's
`self.audio_speaker.set_volume`) and the user said "set the volume to N", the
echo model calls that tool with N, then reports the device's answer, labelled
"(echo tool demo)". It is a deterministic rule, not understanding, and says so.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

from runtime.pipeline.interfaces import LlmOutput, LlmRequest, Message, ToolCall, ToolResult
from runtime.protocol.chunks import split_sentences

NAME = "echo"
LABEL = "(echo)"
NOTHING_HEARD = f"{LABEL} I did not hear anything to repeat."
DELTA_CHARS = 12  # roughly a token or two per delta, like a streaming model
TOOL_LABEL = "(echo tool demo)"
_SET_VOLUME = re.compile(r"\bset (?:the )?volume to (\d{1,3})\b", re.IGNORECASE)


def _untagged(text: str) -> str:
    # User text must not open or close `<chunk>` tags of its own.
    return text.replace("<", " ").replace(">", " ")


def echo_reply(request: LlmRequest) -> str:
    """The full `<chunk>` reply for `request`: its last user message, repeated,
    then the user message before it (if memory holds one)."""
    said = [m.content for m in request.messages if isinstance(m, Message) and m.role == "user"]
    heard = said[-1] if said else ""
    sentences = split_sentences(_untagged(heard))
    if not sentences:
        return f"<chunk>{NOTHING_HEARD}</chunk>"
    first, *rest = sentences
    chunks = [f"{LABEL} You said: {first}", *rest]
    earlier = next((text for text in reversed(said[:-1]) if text.strip()), "")
    if earlier:
        chunks.append(f"Before that you said: {' '.join(split_sentences(_untagged(earlier)))}")
    return "".join(f"<chunk>{chunk}</chunk>" for chunk in chunks)


class EchoLLM:
    """LLM provider that needs nothing: no key, no network, no model."""

    name = NAME

    async def stream(self, request: LlmRequest) -> AsyncIterator[LlmOutput]:
        demo = tool_demo(request)
        if isinstance(demo, ToolCall):
            await asyncio.sleep(0)
            yield demo
            return
        reply = demo if demo is not None else echo_reply(request)
        for start in range(0, len(reply), DELTA_CHARS):
            # Yield to the loop between deltas, as a network stream would, so
            # cancellation and interleaving behave like the real thing.
            await asyncio.sleep(0)
            yield reply[start : start + DELTA_CHARS]


def volume_asked(text: str) -> int | None:
    """The level in "set the volume to N" (capped at 100), else None: the demo's rule."""
    asked = _SET_VOLUME.search(text)
    return min(100, int(asked.group(1))) if asked is not None else None


def tool_demo_sentences(level: int, output: str, *, is_error: bool = False) -> list[str]:
    """What the demo says once the Dot's volume tool answered (the pipeline's echo model
    and the echo Realtime provider say the same)."""
    outcome = "could not do it" if is_error else "answered"
    return [
        f"{TOOL_LABEL} I asked the Dot to set the volume to {level}.",
        f"It {outcome}: {_untagged(output)[:120]}.",
    ]


def tool_demo(request: LlmRequest) -> ToolCall | str | None:
    """The tool demo's next step: a call to make, the reply once it answered, or None."""
    volume = next((t.name for t in request.tools if t.name.endswith("set_volume")), None)
    last_user = next(
        (
            m.content
            for m in reversed(request.messages)
            if isinstance(m, Message) and m.role == "user"
        ),
        "",
    )
    level = volume_asked(last_user)
    if volume is None or level is None:
        return None
    last = request.messages[-1] if request.messages else None
    if isinstance(last, ToolResult):
        sentences = tool_demo_sentences(level, last.output, is_error=last.is_error)
        return "".join(f"<chunk>{sentence}</chunk>" for sentence in sentences)
    if request.tool_choice == "none":
        return None
    return ToolCall("echo-tool-demo", volume, json.dumps({"volume": level}))
