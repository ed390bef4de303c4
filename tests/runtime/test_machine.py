"""The device state machine: every transition (pure, no I/O)."""

from __future__ import annotations

from runtime.protocol.device import ListenMode
from runtime.session.machine import (
    CloseAfterTurn,
    DeviceMachine,
    EndUtterance,
    Interrupt,
    Outcome,
    Phase,
    SendHello,
    StartListening,
)


def ready(mode: ListenMode = ListenMode.AUTO) -> DeviceMachine:
    m = DeviceMachine()
    assert m.hello() == [SendHello()]
    assert m.listen_start(mode) == [StartListening(mode)]
    return m


def test_handshake_gates_everything() -> None:
    m = DeviceMachine()
    assert m.listen_start(ListenMode.AUTO) == []
    assert m.abort() == []
    assert m.phase is Phase.HANDSHAKE
    assert not m.accepts_audio
    assert m.hello() == [SendHello()]
    assert m.hello() == [SendHello()]  # repeated hello is answered again
    assert m.phase is Phase.READY


def test_auto_turn_then_listen_again_without_close() -> None:
    m = ready()
    assert m.accepts_audio
    assert m.speech_start() == []
    assert m.speech_end() == [EndUtterance()]
    assert m.phase is Phase.RESPONDING and not m.accepts_audio
    assert m.speech_end() == []
    assert m.turn_finished(Outcome.COMPLETED, close_after_turn=False) == [
        StartListening(ListenMode.AUTO)
    ]
    assert m.phase is Phase.LISTENING


def test_close_after_turn_reasons() -> None:
    for outcome, reason in (
        (Outcome.COMPLETED, "turn_complete"),
        (Outcome.IGNORED, "ignored_transcript"),
        (Outcome.FAILED, "error"),
    ):
        m = ready()
        m.speech_end()
        assert m.turn_finished(outcome, close_after_turn=True) == [CloseAfterTurn(reason)]
        assert m.phase is Phase.CLOSING
        assert m.listen_start(ListenMode.AUTO) == []
        assert m.abort() == []


def test_manual_mode_ends_on_listen_stop_only_and_waits_after() -> None:
    m = ready(ListenMode.MANUAL)
    assert m.speech_end() == []
    assert m.listen_stop() == [EndUtterance()]
    assert m.listen_stop() == []
    assert m.turn_finished(Outcome.COMPLETED, close_after_turn=False) == []
    assert m.phase is Phase.READY


def test_an_utterance_at_its_bound_ends_in_every_mode() -> None:
    for mode in ListenMode:
        m = ready(mode)
        assert m.utterance_full() == [EndUtterance()]
        assert m.phase is Phase.RESPONDING
        assert m.utterance_full() == []  # only a listening utterance can be full


def test_realtime_without_echo_cancellation_is_deaf_while_responding() -> None:
    m = ready(ListenMode.REALTIME)  # barge_in stays False: no features.aec
    m.speech_end()
    assert not m.accepts_audio  # its own voice would interrupt it
    assert m.barge_in_confirmed() == []
    assert m.phase is Phase.RESPONDING


def test_confirmed_barge_in_interrupts_and_keeps_listening() -> None:
    m = ready(ListenMode.REALTIME)
    m.barge_in = True
    m.speech_end()
    assert m.barge_in_confirmed() == [Interrupt(Outcome.INTERRUPTED)]
    assert m.phase is Phase.LISTENING  # the interrupting speech is the utterance now
    assert m.barge_in_confirmed() == []
    assert m.speech_end() == [EndUtterance()]


def test_realtime_barge_in_and_audio_while_responding() -> None:
    m = ready(ListenMode.REALTIME)
    m.barge_in = True
    m.speech_end()
    assert m.accepts_audio  # realtime keeps listening while speaking
    assert m.speech_start() == [Interrupt(Outcome.INTERRUPTED), StartListening(ListenMode.REALTIME)]
    assert m.phase is Phase.LISTENING
    # The interrupted turn reports later; the machine has moved on.
    assert m.turn_finished(Outcome.INTERRUPTED, close_after_turn=True) == []


def test_auto_mode_ignores_speech_while_responding_and_abort_interrupts() -> None:
    m = ready()
    m.speech_end()
    assert m.speech_start() == []
    assert m.abort() == [Interrupt(Outcome.ABORTED)]
    assert m.phase is Phase.READY
    assert m.abort() == [Interrupt(Outcome.ABORTED)]  # answered even when idle


def test_listen_start_while_responding_interrupts() -> None:
    m = ready()
    m.speech_end()
    assert m.listen_start(None) == [
        Interrupt(Outcome.INTERRUPTED),
        StartListening(ListenMode.AUTO),
    ]
