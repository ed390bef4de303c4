"""The barge-in machine: real interruptions stop a reply, coughs, backchannels and echo do not."""

from __future__ import annotations

from runtime.session.barge_in import BargeIn, BargeInConfig, Verdict, words

CONFIG = BargeInConfig(min_ms=500, max_ms=1200)
REPLY = ["Sure. Tomorrow will be sunny in the morning."]


def test_words_join_hyphens_and_drop_punctuation() -> None:
    assert words("Mm-hmm. Uh-huh, OK!") == ["mmhmm", "uhhuh", "ok"]


def test_real_words_after_the_minimum_confirm() -> None:
    barge = BargeIn(CONFIG, REPLY)
    assert barge.transcript("Wait, stop") is None  # words, but only 300 ms of speech
    assert barge.heard(300) is None
    decision = barge.heard(540)
    assert decision is not None and decision.verdict is Verdict.CONFIRM
    assert decision.reason == "words" and decision.text == "Wait, stop"
    assert barge.heard(900) is None  # decided once


def test_a_short_sound_is_dismissed_when_it_stops() -> None:
    barge = BargeIn(CONFIG, REPLY)
    assert barge.heard(240) is None
    decision = barge.heard(0)
    assert decision is not None and (decision.verdict, decision.reason) == (
        Verdict.DISMISS,
        "short",
    )


def test_a_long_backchannel_is_dismissed_not_confirmed() -> None:
    barge = BargeIn(CONFIG, REPLY)
    barge.transcript("Mm-hmm, yeah.")
    assert barge.heard(700) is None  # long enough, but nothing but backchannels
    decision = barge.heard(0)
    assert decision is not None and decision.reason == "backchannel"
    assert decision.verdict is Verdict.DISMISS


def test_the_replys_own_words_are_echo() -> None:
    barge = BargeIn(CONFIG, REPLY)
    barge.transcript("tomorrow will be sunny")
    assert barge.heard(1500) is None
    decision = barge.heard(0)
    assert decision is not None and (decision.verdict, decision.reason) == (
        Verdict.DISMISS,
        "echo",
    )


def test_words_of_a_sentence_that_started_later_are_echo_too() -> None:
    barge = BargeIn(CONFIG, REPLY)
    barge.add_reply_text("Take a jacket tonight.")
    barge.transcript("take a jacket")
    assert barge.heard(800) is None


def test_without_a_transcript_long_speech_confirms() -> None:
    barge = BargeIn(CONFIG, REPLY)
    assert barge.heard(1100) is None
    decision = barge.heard(1200)
    assert decision is not None and (decision.verdict, decision.reason) == (
        Verdict.CONFIRM,
        "long_speech",
    )


def test_a_stopped_candidate_waits_for_its_final_transcript() -> None:
    barge = BargeIn(CONFIG, REPLY)
    assert barge.heard(800) is None
    assert barge.heard(0) is None and barge.stopped  # long enough: the words decide
    decision = barge.final("Cancel that")
    assert decision is not None and decision.verdict is Verdict.CONFIRM
    silent = BargeIn(CONFIG, REPLY)
    silent.heard(800)
    silent.heard(0)
    decision = silent.final("")
    assert decision is not None and decision.reason == "no_words"
