"""The labelled turn-taking set of `opendot bench turns`, built at bench time.

No audio is committed: every clip is synthesised by the offline voices the
runtime ships (Piper's en_US joe voice at three speaking styles; espeak-ng for
a second, robotic voice where a backchannel needs one), then labelled from
the synthesis itself (where speech ends, where a pause was inserted).

- complete: a finished request, then silence;
- paused: a request with a mid-sentence pause (600 / 900 / 1200 ms) spliced
  into Piper's own hesitation ("I'd like to order a... large pizza", some
  with "um"/"uh"), so the voice before the pause does not sound finished;
- interruption / backchannel / noise: what a person does over a playing reply
  (real words; "mm-hmm", "yeah", "ok"; coughs, claps, clicks), mixed over the
  reply's echo as a canceller leaves it (-30 dB), plus echo alone (-20 dB,
  a weak canceller).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

RATE = 16_000
LEAD_MS = 300
TAIL_MS = 2600  # longer than the longest semantic pause, so every clip can end
NOISE_STD = 30.0  # about -60 dBFS of microphone noise under everything

COMPLETE = (
    "What is the weather like today?",
    "Please set a timer for ten minutes.",
    "Can you tell me a joke about cats?",
    "Turn off the lights in the kitchen.",
    "I'd like to order a large pizza.",
    "Remind me to call my mother tomorrow.",
    "How far is it to the airport?",
    "Play some relaxing music.",
    "What time does the pharmacy close?",
    "Add milk and eggs to my shopping list.",
    "Who won the game last night?",
    "Thank you, that's all for now.",
)
PAUSED = (
    "I'd like to order a... large pizza.",
    "What is the... weather like today?",
    "Please set a timer for... ten minutes.",
    "Can you tell me... a joke about cats?",
    "Turn off the lights in the... kitchen.",
    "My name is Sarah and... I live in Boston.",
    "I need to buy... milk and eggs.",
    "Remind me to call... my mother tomorrow.",
    "I think we should go to the, um, park later.",
    "The meeting is on, uh, Tuesday at three.",
    "Could you, um, read me the news?",
    "I was wondering if, uh, you could help me.",
)
PAUSES_MS = (600, 900, 1200)
INTERRUPTIONS = (
    "Wait, stop, I meant Tuesday.",
    "No, that's not what I asked.",
    "Hold on, can you repeat that?",
    "Actually, cancel that please.",
    "Stop, what about tomorrow?",
    "Sorry, I said Boston, not Austin.",
    "Excuse me, how much does it cost?",
    "Never mind, tell me a joke instead.",
)
BACKCHANNELS = ("Mm-hmm.", "Yeah.", "Okay.", "Uh-huh.", "Right.", "Yeah, yeah.", "Ok.", "Mhm.")
REPLY = (
    "Sure. Tomorrow will be sunny in the morning, with clouds later in the afternoon, "
    "and a light wind from the west. Take a jacket if you go out in the evening."
)
STYLES: tuple[
    dict[str, float], ...
] = (  # Piper synthesis settings: default, slower and livelier, faster
    {},
    {"length_scale": 1.15, "noise_scale": 0.8},
    {"length_scale": 0.9, "noise_w_scale": 1.0},
)


@dataclass
class Clip:
    kind: str  # complete | paused | interruption | backchannel | noise | echo
    text: str
    pcm: np.ndarray  # float32 16 kHz, the uplink as the runtime hears it
    speech_end: int  # sample where the person's speech ends (complete, paused)
    onset: int = 0  # sample where the person starts (over a reply)
    pause: tuple[int, int] | None = None  # the inserted pause (paused clips)
    style: int = 0
    extra: dict[str, float] = field(default_factory=dict)


@functools.cache
def _voice() -> object:
    from runtime.providers.local_tts import piper_voice

    return piper_voice()


def piper(text: str, style: int = 0) -> np.ndarray:
    from piper.config import SynthesisConfig

    from runtime.audio.resample import resample

    voice = _voice()
    config = SynthesisConfig(**STYLES[style])  # type: ignore[arg-type]
    pcm = b"".join(c.audio_int16_bytes for c in voice.synthesize(text, config))  # type: ignore[attr-defined]
    return np.frombuffer(resample(pcm, 22_050, RATE), dtype="<i2").astype(np.float32) / 32768


def espeak(text: str) -> np.ndarray:
    from runtime.audio.synthetic import speech_pcm

    return np.frombuffer(speech_pcm(text, RATE), dtype="<i2").astype(np.float32) / 32768


def _energy(audio: np.ndarray, frame: int = 160) -> np.ndarray:
    n = len(audio) // frame
    return np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))


def trim(audio: np.ndarray, level: float = 0.004) -> np.ndarray:
    loud = np.nonzero(_energy(audio) > level)[0]
    if not len(loud):
        return audio[:0]
    return audio[loud[0] * 160 : (loud[-1] + 1) * 160]


def longest_gap(audio: np.ndarray, level: float = 0.004) -> tuple[int, int]:
    """(start, end) samples of the longest quiet stretch inside the speech."""
    quiet = _energy(audio) <= level
    best, run = (0, 0), None
    for i, q in enumerate(quiet):
        if q and run is None:
            run = i
        elif not q and run is not None:
            if i - run > best[1] - best[0]:
                best = (run, i)
            run = None
    return best[0] * 160, best[1] * 160


def _frame(speech: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    lead = np.zeros(LEAD_MS * RATE // 1000, dtype=np.float32)
    tail = np.zeros(TAIL_MS * RATE // 1000, dtype=np.float32)
    audio = np.concatenate([lead, speech, tail])
    audio += rng.normal(0, NOISE_STD / 32768, audio.size).astype(np.float32)
    return audio, len(lead) + len(speech)


def end_of_turn_clips(seed: int = 16) -> list[Clip]:
    rng = np.random.default_rng(seed)
    clips: list[Clip] = []
    for style in range(len(STYLES)):
        for text in COMPLETE:
            audio, end = _frame(trim(piper(text, style)), rng)
            clips.append(Clip("complete", text, audio, end, style=style))
    for style in range(len(STYLES)):
        for i, text in enumerate(PAUSED):
            speech = trim(piper(text, style))
            start, stop = longest_gap(speech)
            pause_ms = PAUSES_MS[(i + style) % len(PAUSES_MS)]
            gap = np.zeros(pause_ms * RATE // 1000, dtype=np.float32)
            spliced = np.concatenate([speech[:start], gap, speech[stop:]])
            audio, end = _frame(spliced, rng)
            lead = LEAD_MS * RATE // 1000
            pause = (lead + start, lead + start + len(gap))
            clip = Clip("paused", text, audio, end, pause=pause, style=style)
            clip.extra["pause_ms"] = pause_ms
            clips.append(clip)
    return clips


def _cough(rng: np.random.Generator, ms: int) -> np.ndarray:
    n = ms * RATE // 1000
    t = np.arange(n) / RATE
    burst = rng.normal(0, 1, n) * np.exp(-t / (ms / 4000)) * (1 - np.exp(-t / 0.005))
    # Shaped like a cough: most energy in 300-3000 Hz.
    spectrum = np.fft.rfft(burst)
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < 300) | (freqs > 3000)] *= 0.1
    out = np.fft.irfft(spectrum, n)
    return (0.3 * out / np.max(np.abs(out))).astype(np.float32)


def _clicks(rng: np.random.Generator, count: int, spacing_ms: int) -> np.ndarray:
    n = count * spacing_ms * RATE // 1000
    out = np.zeros(n, dtype=np.float32)
    for k in range(count):
        at = k * spacing_ms * RATE // 1000
        width = 80
        out[at : at + width] = rng.normal(0, 0.4, width) * np.exp(-np.arange(width) / 15)
    return out


def noises(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    return [
        ("cough", _cough(rng, 250)),
        ("cough", _cough(rng, 400)),
        (
            "double cough",
            np.concatenate([_cough(rng, 250), np.zeros(1600, np.float32), _cough(rng, 300)]),
        ),
        ("clap", _clicks(rng, 1, 200)),
        ("keyboard", _clicks(rng, 8, 120)),
        ("door knock", _clicks(rng, 3, 250)),
    ]


def barge_in_clips(seed: int = 17) -> tuple[str, np.ndarray, list[Clip]]:
    """The reply's text and audio, and clips of the uplink while it plays."""
    rng = np.random.default_rng(seed)
    reply = piper(REPLY)
    onset_s = 1.2

    def over_reply(person: np.ndarray | None, echo_db: float) -> tuple[np.ndarray, int]:
        audio = reply * (10 ** (echo_db / 20))
        audio = audio + rng.normal(0, NOISE_STD / 32768, audio.size).astype(np.float32)
        onset = int(onset_s * RATE)
        if person is not None:
            end = min(audio.size, onset + person.size)
            audio[onset:end] += person[: end - onset]
        return audio.astype(np.float32), onset

    clips: list[Clip] = []
    for style, text in enumerate(INTERRUPTIONS):
        person = trim(piper(text, style % len(STYLES)))
        audio, onset = over_reply(person, -30)
        clips.append(Clip("interruption", text, audio, onset + person.size, onset=onset))
    for i, text in enumerate(BACKCHANNELS):
        person = trim(piper(text, i % len(STYLES)) if i % 2 == 0 else espeak(text))
        audio, onset = over_reply(person, -30)
        clips.append(Clip("backchannel", text, audio, onset + person.size, onset=onset))
    for name, sound in noises(rng):
        audio, onset = over_reply(sound, -30)
        clips.append(Clip("noise", name, audio, onset + sound.size, onset=onset))
    for db in (-30.0, -20.0):
        audio, _ = over_reply(None, db)
        clips.append(Clip("echo", f"reply echo at {db:g} dB", audio, 0, onset=0))
    return REPLY, reply, clips
