"""The xiaozhi emotion table."""

from __future__ import annotations

from runtime.protocol.emotions import (
    DEFAULT_EMOTION,
    EMOTIONS,
    detect_emotion,
    emotion_emoji,
    emotion_of_emoji,
    normalize_emotion,
)


def test_table_is_the_firmwares_21_single_codepoint_emoji() -> None:
    assert len(EMOTIONS) == 21
    assert len(set(EMOTIONS.values())) == 21
    assert all(len(emoji) == 1 for emoji in EMOTIONS.values())
    assert EMOTIONS[DEFAULT_EMOTION] == "🙂"


def test_lookup_both_ways() -> None:
    assert emotion_emoji("thinking") == "🤔"
    assert emotion_emoji(" Cool ") == "😎"
    assert emotion_emoji("grumpy") == "🙂"
    assert emotion_emoji(None) == "🙂"
    assert normalize_emotion("SAD") == "sad"
    assert emotion_of_emoji("😴") == "sleepy"
    assert emotion_of_emoji("x") is None


def test_detect_emotion_finds_the_first_table_emoji() -> None:
    assert detect_emotion("Ha! 😂 then 😭") == "funny"
    assert detect_emotion("no emoji 👍 here") is None
    assert detect_emotion("") is None
