from __future__ import annotations

import pytest

from runtime.audio.synthetic import speech_pcm


@pytest.fixture(scope="session")
def weather_16k() -> bytes:
    """'what is the weather like today' from espeak-ng, PCM16 mono 16 kHz."""
    return speech_pcm("what is the weather like today", 16_000)
