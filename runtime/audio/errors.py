"""The audio package's one exception type."""

from __future__ import annotations


class AudioError(ValueError):
    """Audio that cannot be decoded, encoded or parsed (a garbage Opus packet, a
    PCM buffer of odd length, a WAV file that is not PCM16), or a codec used
    after `close()`. Callers treat it as bad input: report it and carry on."""
