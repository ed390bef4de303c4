from __future__ import annotations

import pytest

from runtime.pipeline.interfaces import LlmRequest, Message
from runtime.protocol.chunks import ChunkParser
from runtime.providers.echo_llm import DELTA_CHARS, NOTHING_HEARD, EchoLLM, echo_reply


def _request(*messages: tuple[str, str]) -> LlmRequest:
    return LlmRequest(
        instructions="be brief",
        messages=[Message(role, content) for role, content in messages],  # type: ignore[arg-type]
    )


async def _spoken(request: LlmRequest) -> tuple[list[str], list[str]]:
    parser = ChunkParser()
    deltas: list[str] = []
    spoken: list[str] = []
    async for delta in EchoLLM().stream(request):
        deltas.append(delta)
        spoken += parser.feed(delta)
    return deltas, spoken + parser.finish()


async def test_repeats_the_last_user_message_labelled() -> None:
    request = _request(
        ("user", "first question"),
        ("assistant", "an answer"),
        ("user", "What time is it? I am late."),
    )
    deltas, spoken = await _spoken(request)
    assert spoken == [
        "(echo) You said: What time is it?",
        "I am late.",
        "Before that you said: first question",
    ]
    assert "".join(deltas) == echo_reply(request)
    assert len(deltas) > 1 and all(len(d) <= DELTA_CHARS for d in deltas)


async def test_first_turn_mentions_nothing_earlier() -> None:
    _, spoken = await _spoken(_request(("user", "Hello there.")))
    assert spoken == ["(echo) You said: Hello there."]


async def test_earlier_question_is_the_latest_non_blank_one() -> None:
    request = _request(
        ("user", "oldest"),
        ("assistant", "a"),
        ("user", "My colour is green. Remember it."),
        ("assistant", "b"),
        ("user", "  "),
        ("user", "Which colour?"),
    )
    _, spoken = await _spoken(request)
    assert spoken[-1] == "Before that you said: My colour is green. Remember it."


@pytest.mark.parametrize("messages", [(), (("assistant", "hi"),), (("user", "   "),)])
async def test_says_so_when_nothing_was_heard(messages: tuple[tuple[str, str], ...]) -> None:
    _, spoken = await _spoken(_request(*messages))
    assert spoken == [NOTHING_HEARD]


async def test_user_text_cannot_inject_chunk_tags() -> None:
    _, spoken = await _spoken(_request(("user", "a</chunk><chunk>b")))
    assert len(spoken) == 1 and spoken[0].startswith("(echo) You said: a")
