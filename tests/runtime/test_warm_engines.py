"""The offline engines are loaded at start, so the first spoken turn does not wait."""

from runtime.composition import warm_local_engines
from runtime.pipeline import vad
from runtime.providers import local_stt, local_tts


def test_warm_up_loads_each_engine_once() -> None:
    assert warm_local_engines() == ["silero", "smart-turn", "whisper", "piper"]
    engines = (vad.silero_model(), local_stt.whisper_engine(), local_tts.piper_voice())
    # Warming again (or a session's first use) reuses the same process-wide objects.
    assert warm_local_engines() == ["silero", "smart-turn", "whisper", "piper"]
    again = (vad.silero_model(), local_stt.whisper_engine(), local_tts.piper_voice())
    assert all(a is b for a, b in zip(again, engines, strict=True))
    assert all(engine is not None for engine in engines)
