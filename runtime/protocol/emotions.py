"""The xiaozhi emotion table for `llm {emotion, text}` messages.

The firmware shows the face named by `emotion`; `text` carries the matching
emoji. These are the 21 names the firmware's emoji display knows, in the
order xiaozhi-esp32-server scans for them. The default is 🙂 happy.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

DEFAULT_EMOTION: Final = "happy"

EMOTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "funny": "😂",
        "crying": "😭",
        "angry": "😠",
        "sad": "😔",
        "loving": "😍",
        "surprised": "😲",
        "shocked": "😱",
        "thinking": "🤔",
        "relaxed": "😌",
        "sleepy": "😴",
        "silly": "😜",
        "confused": "🙄",
        "neutral": "😶",
        "happy": "🙂",
        "laughing": "😆",
        "embarrassed": "😳",
        "winking": "😉",
        "cool": "😎",
        "delicious": "🤤",
        "kissy": "😘",
        "confident": "😏",
    }
)

_BY_EMOJI: Final[Mapping[str, str]] = MappingProxyType({v: k for k, v in EMOTIONS.items()})


def normalize_emotion(name: str | None) -> str:
    """A known emotion name (case-insensitive), else the default."""
    key = (name or "").strip().lower()
    return key if key in EMOTIONS else DEFAULT_EMOTION


def emotion_emoji(name: str | None) -> str:
    """The emoji of an emotion name; unknown names get the default's."""
    return EMOTIONS[normalize_emotion(name)]


def emotion_of_emoji(emoji: str) -> str | None:
    """The emotion name of one emoji, or None."""
    return _BY_EMOJI.get(emoji)


def detect_emotion(text: str) -> str | None:
    """The first table emoji appearing in `text`, as an emotion name."""
    for char in text:
        name = _BY_EMOJI.get(char)
        if name is not None:
            return name
    return None
