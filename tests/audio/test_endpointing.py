from __future__ import annotations

import pytest

from runtime.pipeline.endpointing import EndpointConfig, Endpointer
from runtime.pipeline.interfaces import VadEvent, VadEventKind, VadOptions

START = VadEventKind.SPEECH_START
END = VadEventKind.SPEECH_END


def _endpointer(endpointing_ms: int = 100, min_speech_ms: int = 64) -> Endpointer:
    options = VadOptions(endpointing_ms=endpointing_ms, min_speech_ms=min_speech_ms)
    return Endpointer(EndpointConfig.from_options(options, window_ms=32))


def _run(endpointer: Endpointer, probabilities: list[float]) -> list[tuple[VadEventKind, int]]:
    return [(e.kind, e.at_ms) for e in endpointer.push_many(probabilities)]


def test_config_rounds_up_to_whole_windows() -> None:
    config = EndpointConfig.from_options(VadOptions(endpointing_ms=300, min_speech_ms=64), 32)
    assert (config.start_windows, config.hangover_windows) == (2, 10)
    assert config.silence_threshold == pytest.approx(0.35)
    tiny = EndpointConfig.from_options(VadOptions(endpointing_ms=0, min_speech_ms=0), 32)
    assert (tiny.start_windows, tiny.hangover_windows) == (1, 1)
    low = EndpointConfig.from_options(VadOptions(threshold=0.1), 32)
    assert low.silence_threshold == 0.0


def test_start_needs_consecutive_speech_windows() -> None:
    endpointer = _endpointer()
    # A lone speech window is a click, not speech; two in a row start at the first.
    assert _run(endpointer, [0.1, 0.9, 0.2, 0.9, 0.9]) == [(START, 96)]
    assert endpointer.in_speech


def test_end_after_hangover_stamped_where_silence_began() -> None:
    endpointer = _endpointer(endpointing_ms=100)  # 4 windows
    events = _run(endpointer, [0.9, 0.9, 0.9, 0.1, 0.1, 0.1])
    assert events == [(START, 0)]
    assert _run(endpointer, [0.1]) == [(END, 96)]
    assert not endpointer.in_speech


def test_speech_cancels_a_silence_run() -> None:
    endpointer = _endpointer(endpointing_ms=100)
    probabilities = [0.9, 0.9, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.1]
    assert _run(endpointer, probabilities) == [(START, 0), (END, 192)]


def test_hysteresis_band_neither_starts_nor_cancels_silence() -> None:
    endpointer = _endpointer(endpointing_ms=64)  # 2 windows
    # 0.4 is between 0.35 and 0.5: during speech it is not silence...
    assert _run(endpointer, [0.9, 0.9, 0.4, 0.4, 0.4]) == [(START, 0)]
    # ...but once silence began it does not cancel it either.
    assert _run(endpointer, [0.2, 0.4]) == [(END, 160)]


def test_restart_after_end_and_reset() -> None:
    endpointer = _endpointer(endpointing_ms=32, min_speech_ms=32)
    assert _run(endpointer, [0.9, 0.0, 0.9, 0.0]) == [(START, 0), (END, 32), (START, 64), (END, 96)]
    endpointer.reset()
    assert not endpointer.in_speech
    assert endpointer.push(0.9) == VadEvent(START, 0)


def test_silence_only_gives_nothing() -> None:
    assert _run(_endpointer(), [0.0] * 100) == []
