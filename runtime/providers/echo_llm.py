"""The honest stand-in for a language model: it repeats what it heard.

Used only when an agent has no LLM configured (no keys), so a fresh install
still completes a spoken turn end to end. Every reply starts with "(echo)" so
nobody mistakes it for an answer, and it is streamed in `<chunk>` form in
small deltas, exercising the same parser and sentence pipeline as a real model.
When the request carries an earlier user message (conversation memory), the
reply repeats that too, so memory across turns is audible without a model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from runtime.pipeline.interfaces import LlmRequest
from runtime.protocol.chunks import split_sentences

NAME = "echo"
LABEL = "(echo)"
NOTHING_HEARD = f"{LABEL} I did not hear anything to repeat."
DELTA_CHARS = 12  # roughly a token or two per delta, like a streaming model


def _untagged(text: str) -> str:
    # User text must not open or close `<chunk>` tags of its own.
    return text.replace("<", " ").replace(">", " ")


def echo_reply(request: LlmRequest) -> str:
    """The full `<chunk>` reply for `request`: its last user message, repeated,
    then the user message before it (if memory holds one)."""
    said = [m.content for m in request.messages if m.role == "user"]
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

    async def stream(self, request: LlmRequest) -> AsyncIterator[str]:
        reply = echo_reply(request)
        for start in range(0, len(reply), DELTA_CHARS):
            # Yield to the loop between deltas, as a network stream would, so
            # cancellation and interleaving behave like the real thing.
            await asyncio.sleep(0)
            yield reply[start : start + DELTA_CHARS]
