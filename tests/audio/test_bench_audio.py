from __future__ import annotations

from opendot.bench.audio import PHRASES, format_table, word_errors


def test_word_errors_counts_edits_after_normalising() -> None:
    assert word_errors("set a timer for ten minutes", "Set a timer for 10 minutes.") == (0, 6)
    assert word_errors("turn on the lights", "turn the light") == (2, 4)
    assert word_errors("a b", "a b c d") == (2, 2)
    assert word_errors("one two", "") == (2, 2)


def test_the_phrase_set_is_fixed_at_ten() -> None:
    assert len(PHRASES) == len(set(PHRASES)) == 10


def test_table_shows_nested_rows_and_lists() -> None:
    table = format_table(
        {
            "opus": {"complexity": {"0": {"encode_us": 1.5}, "10": {"encode_us": 9.0}}},
            "stt": {"wer": 0.1, "mistakes": [{"said": "a", "heard": "b"}]},
        }
    )
    assert "[opus]" in table and "encode_us" in table and "9.0" in table
    assert "wer: 0.1" in table and '"heard": "b"' in table
