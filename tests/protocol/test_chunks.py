"""The incremental `<chunk>` parser, sentence splitting and style hints."""

from __future__ import annotations

import pytest

from runtime.protocol.chunks import (
    CHUNK_FORMAT_RULES,
    MAX_TAG_CHARS,
    ChunkParser,
    chunk_style_hint,
    clean_text,
    split_sentences,
)


def run(deltas: list[str]) -> list[str]:
    parser = ChunkParser()
    out: list[str] = []
    for delta in deltas:
        out.extend(parser.feed(delta))
    out.extend(parser.finish())
    return out


def every_split(text: str) -> list[list[str]]:
    """The text whole, char by char, and cut in two at every position."""
    cuts = [[text], list(text)]
    cuts += [[text[:i], text[i:]] for i in range(1, len(text))]
    return cuts


REPLY = (
    "<chunk>Hello   there,\n friend.</chunk>\n<CHUNK index=\"2\" style='calm'>It is "
    "<emphasis>sunny</emphasis> today.</Chunk> stray text <chunk >Bye &amp; see you</chunk >"
)


def test_reply_parses_the_same_however_it_is_split() -> None:
    expected = ["Hello there, friend.", "It is sunny today.", "Bye & see you"]
    for deltas in every_split(REPLY):
        assert run(deltas) == expected, deltas


def test_chunks_are_emitted_as_soon_as_they_close() -> None:
    parser = ChunkParser()
    assert parser.feed("<chunk>One.</chu") == []
    assert parser.feed("nk><chunk>Two") == ["One."]
    assert parser.feed(".</chunk>") == ["Two."]
    assert parser.finish() == []
    assert parser.chunk_count == 2


def test_trailing_unclosed_chunk_is_flushed() -> None:
    for deltas in every_split("<chunk>First.</chunk><chunk>And the rest"):
        assert run(deltas) == ["First.", "And the rest"]


def test_trailing_partial_closing_tag_is_not_spoken() -> None:
    assert run(["<chunk>Almost done</chu"]) == ["Almost done"]
    assert run(["<chunk>Almost done<"]) == ["Almost done"]
    assert run(["<chunk>Almost done</"]) == ["Almost done"]


def test_text_outside_chunks_is_dropped() -> None:
    assert run(["<chunk>a</chunk> outside <b>x</b> <chunk>b</chunk> tail"]) == ["a", "b"]


def test_empty_and_whitespace_chunks_are_skipped() -> None:
    assert run(["<chunk>  </chunk><chunk></chunk><chunk>x</chunk>"]) == ["x"]


def test_missing_closing_tag_closes_at_the_next_chunk() -> None:
    assert run(["<chunk>one<chunk>two</chunk>"]) == ["one", "two"]


def test_self_closing_chunk_is_a_boundary() -> None:
    assert run(["<chunk>one<chunk/>ignored<chunk>two</chunk>"]) == ["one", "two"]


def test_stray_closing_tag_is_harmless() -> None:
    assert run(["</chunk><chunk>one</chunk></chunk>"]) == ["one"]


def test_angle_brackets_that_are_not_markup_are_text() -> None:
    assert run(["<chunk>3 < 5 and 7 > 2</chunk>"]) == ["3 < 5 and 7 > 2"]
    assert run(["<chunk>a << b</chunk>"]) == ["a << b"]


def test_a_trailing_bracket_that_is_not_markup_is_spoken() -> None:
    assert run(["<chunk>is a < 5"]) == ["is a < 5"]
    assert run(["Yes, 1 < 2"]) == ["Yes, 1 < 2"]
    assert run(["<chunk>a</chunk> and < 5"]) == ["a"]  # outside a chunk: dropped


def test_an_unterminated_angle_bracket_eventually_becomes_text() -> None:
    long_tail = "x" * (MAX_TAG_CHARS + 1)
    assert run(["<chunk>a <", long_tail, "</chunk>"]) == [f"a <{long_tail}"]


def test_reset_between_replies() -> None:
    parser = ChunkParser()
    parser.feed("<chunk>one")
    assert parser.finish() == ["one"]
    assert parser.feed("Plain reply. Next one") == ["Plain reply."]
    assert parser.finish() == ["Next one"]


# --- tagless replies --------------------------------------------------------------


def test_tagless_reply_is_spoken_sentence_by_sentence() -> None:
    text = "Sure. It costs 3.50 dollars, e.g. a coffee! Is that OK? Dr. Smith agrees"
    expected = ["Sure.", "It costs 3.50 dollars, e.g. a coffee!", "Is that OK?", "Dr. Smith agrees"]
    for deltas in every_split(text):
        assert run(deltas) == expected, deltas


def test_tagless_sentences_stream_early() -> None:
    parser = ChunkParser()
    assert parser.feed("  ") == []
    assert parser.feed("Hello there. ") == []  # nothing visible after it yet
    assert parser.feed("How") == ["Hello there."]
    assert parser.feed(" are you?") == []
    assert parser.finish() == ["How are you?"]
    assert not parser.saw_tags


def test_prose_before_the_first_chunk_is_dropped() -> None:
    for deltas in every_split("Sure. <chunk>Hi</chunk>"):
        assert run(deltas) == ["Hi"], deltas
    parser = ChunkParser()
    parser.feed("Here you go: <chunk>Hi</chunk>")
    assert parser.saw_tags


def test_tagless_reply_strips_markup_and_markdown() -> None:
    assert run(["**Bold** and `code`.\n# Title\n- item <br/> one"]) == [
        "Bold and code.",
        "Title",
        "item one",
    ]


def test_tagless_reply_keeps_literal_brackets() -> None:
    assert run(["1 < 2 is true. Yes"]) == ["1 < 2 is true.", "Yes"]


def test_empty_reply() -> None:
    assert run([]) == []
    assert run(["", "   "]) == []


# --- split_sentences / clean_text / hints -----------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("Wait... what?! Ok", ["Wait...", "what?!", "Ok"]),
        (
            "Version 2.5 is out. Mr. Brown, Mrs. Lee and J. Doe came",
            ["Version 2.5 is out.", "Mr. Brown, Mrs. Lee and J. Doe came"],
        ),
        ("你好。今天天气很好！", ["你好。", "今天天气很好！"]),
        ("line one\nline two", ["line one", "line two"]),
        ("   ", []),
        ("", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_clean_text() -> None:
    assert clean_text("  a\t<tag x='1'>b</tag>\n\nc &lt;d&gt; ") == "a b c <d>"


@pytest.mark.parametrize(
    ("style", "numbers"),
    [
        ("fast", ("6-12", "100")),
        ("FAST ", ("6-12", "100")),
        ("balanced", ("8-25", "180")),
        ("relaxed", ("16-40", "260")),
        ("chatty", ("8-25", "180")),
        (None, ("8-25", "180")),
    ],
)
def test_chunk_style_hint(style: str | None, numbers: tuple[str, str]) -> None:
    hint = chunk_style_hint(style)
    assert f"{numbers[0]} words" in hint
    assert f"at most {numbers[1]} characters" in hint


def test_format_rules_mention_the_tag() -> None:
    assert "<chunk>" in CHUNK_FORMAT_RULES
