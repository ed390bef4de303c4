"""The streamed `<chunk>` reply format (docs/protocols.md §5).

The LLM answers as `<chunk>short spoken phrase</chunk><chunk>...`. Each closed
chunk goes to TTS at once, so speech starts after the first phrase rather than
the whole reply. `ChunkParser` is incremental: deltas may split a tag (or an
attribute) at any character. Tags are case-insensitive and may carry
attributes; text outside chunks is dropped; other tags inside a chunk are
stripped; whitespace collapses; a trailing unclosed chunk is flushed by
`finish()`.

Replies without any tag are spoken whole, split at sentence ends so TTS can
start early: while no tag has been seen and the reply did not open with `<`,
the parser emits each complete sentence once visible text follows it. If a
`<chunk>` shows up later, it switches to tag mode and drops the untagged text
still pending (so "Sure. <chunk>Hi</chunk>" speaks only "Hi").
"""

from __future__ import annotations

import html
import re
from typing import Final

# A '<' with no '>' within this many characters is literal text, not a tag.
MAX_TAG_CHARS: Final = 256

_TAG = re.compile(r"\s*(/?)\s*([A-Za-z][\w:.-]*)([^<>]*?)(/?)\s*$", re.DOTALL)
_PARTIAL_TAG = re.compile(r"<\s*/?\s*(?:[A-Za-z][^<>]*)?$")
_SPACE = re.compile(r"\s+")
_MARKDOWN = re.compile(r"\*\*|__|`+|^#+\s*|^\s*[-*]\s+", re.MULTILINE)
_ANY_TAG = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>")

# Sentence end: terminal punctuation (with closing quotes/brackets) then space.
_SENTENCE_END = re.compile(r"([.!?…。！？]+[\"'”’)\]]*)(\s+)")
_CJK_END = re.compile(r"([。！？])")
_ABBREVIATIONS: Final = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "jr", "sr", "prof", "no", "approx"}
)

_STYLES: Final = {
    "fast": (6, 12, 100),
    "balanced": (8, 25, 180),
    "relaxed": (16, 40, 260),
}

CHUNK_FORMAT_RULES: Final = (
    "Answer only with spoken phrases wrapped in <chunk></chunk> tags, for example "
    "<chunk>Sure, here it is.</chunk><chunk>It is sunny today.</chunk>. "
    "Put nothing outside the tags; no markdown, lists or emoji."
)


def chunk_style_hint(style: str | None) -> str:
    """The length hint appended to the instructions; unknown styles are balanced."""
    key = (style or "").strip().lower()
    low, high, chars = _STYLES.get(key, _STYLES["balanced"])
    return (
        f"Keep each chunk to normally {low}-{high} words and at most {chars} characters, "
        "so speech can start after the first chunk."
    )


def clean_text(text: str) -> str:
    """Spoken form of a text: tags and markdown marks removed, entities decoded,
    whitespace collapsed."""
    text = _ANY_TAG.sub(" ", text)
    text = _MARKDOWN.sub("", text)
    return _SPACE.sub(" ", html.unescape(text)).strip()


def _is_abbreviation(before: str) -> bool:
    words = before.rsplit(None, 1)
    last = words[-1].lower().rstrip(".") if words else ""
    return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())


def _sentence_cuts(text: str) -> list[int]:
    """Offsets just after each complete sentence end followed by whitespace."""
    cuts = []
    for match in _SENTENCE_END.finditer(text):
        if match.group(1).startswith(".") and _is_abbreviation(text[: match.start(1)]):
            continue
        cuts.append(match.end(1))
    for match in _CJK_END.finditer(text):
        cuts.append(match.end(1))
    return sorted(set(cuts))


def split_sentences(text: str) -> list[str]:
    """Split a tagless reply into sentences (cleaned, never empty)."""
    pieces: list[str] = []
    for line in text.splitlines():
        cleaned = clean_text(line)
        start = 0
        for cut in _sentence_cuts(cleaned):
            pieces.append(cleaned[start:cut])
            start = cut
        pieces.append(cleaned[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


class ChunkParser:
    """Incremental `<chunk>` parser: `feed(delta)` and `finish()` return spoken texts."""

    def __init__(self) -> None:
        self._buffer = ""
        self._inside = False
        self._parts: list[str] = []
        self._tag_mode: bool | None = None  # None until the first visible character
        self._untagged = ""
        self.chunk_count = 0

    @property
    def saw_tags(self) -> bool:
        return bool(self._tag_mode)

    def feed(self, delta: str) -> list[str]:
        if self._tag_mode is None:
            stripped = delta.lstrip()
            if not stripped:
                return []
            self._tag_mode = stripped.startswith("<")
        out: list[str] = []
        self._buffer += delta
        self._scan(out)
        return out

    def finish(self) -> list[str]:
        """Flush: the unclosed chunk, or the rest of a tagless reply."""
        out: list[str] = []
        rest, self._buffer = self._buffer, ""
        # What is left starts with '<': a tag cut off by the end of the reply is
        # dropped; "< 5" is text.
        if rest and not _PARTIAL_TAG.match(rest):
            if self._inside:
                self._parts.append(rest)
            elif not self._tag_mode:
                self._untagged += rest
        if self._inside:
            self._emit(out)
        if not self._tag_mode and self._untagged:
            out.extend(split_sentences(self._untagged))
        self._reset()
        return out

    def _reset(self) -> None:
        self._buffer, self._inside, self._parts = "", False, []
        self._tag_mode, self._untagged = None, ""

    def _emit(self, out: list[str]) -> None:
        text = clean_text("".join(self._parts))
        self._parts = []
        self._inside = False
        if text:
            self.chunk_count += 1
            out.append(text)

    def _text(self, piece: str, out: list[str]) -> None:
        if self._inside:
            self._parts.append(piece)
        elif not self._tag_mode:
            self._untagged += piece
            self._flush_sentences(out)

    def _flush_sentences(self, out: list[str]) -> None:
        # A sentence is released only once visible text follows it, so prose
        # directly before a first `<chunk>` is never spoken.
        cuts = [c for c in _sentence_cuts(self._untagged) if self._untagged[c:].strip()]
        if cuts:
            done, self._untagged = self._untagged[: cuts[-1]], self._untagged[cuts[-1] :]
            out.extend(split_sentences(done))

    def _scan(self, out: list[str]) -> None:
        while self._buffer:
            lt = self._buffer.find("<")
            if lt == -1:
                self._text(self._buffer, out)
                self._buffer = ""
                return
            if lt:
                self._text(self._buffer[:lt], out)
                self._buffer = self._buffer[lt:]
            gt = self._buffer.find(">", 1)
            next_lt = self._buffer.find("<", 1)
            if next_lt != -1 and (gt == -1 or next_lt < gt):
                self._literal_lt(out)
                continue
            if gt == -1:
                if len(self._buffer) > MAX_TAG_CHARS:
                    self._literal_lt(out)
                    continue
                return  # a tag may still be arriving
            tag, self._buffer = self._buffer[1:gt], self._buffer[gt + 1 :]
            self._tag(tag, out)

    def _literal_lt(self, out: list[str]) -> None:
        self._buffer = self._buffer[1:]
        self._text("<", out)

    def _tag(self, tag: str, out: list[str]) -> None:
        match = _TAG.match(tag)
        if match is None:  # "a < b > c": not markup
            self._text(f"<{tag}>", out)
            return
        closing, name, _attrs, self_closing = match.groups()
        if name.lower() != "chunk":
            self._text(" ", out)  # other markup is stripped but still separates words
            return
        if not self._tag_mode:
            # A chunk after untagged prose: the prose was not meant to be spoken.
            self._tag_mode = True
            self._untagged = ""
        if self._inside:
            self._emit(out)  # a closing tag, or an opening one the LLM forgot to close
        self._inside = not closing and not self_closing
