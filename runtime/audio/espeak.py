"""In-process espeak-ng through ctypes, on the library the `espeakng-loader`
wheel bundles (libespeak-ng 1.52 plus its data), so no system package is needed.

libespeak-ng keeps one voice, one callback and one output buffer per process,
so every use goes through `EspeakEngine.synthesize`, which holds a process-wide
lock for the whole call. A sentence takes about a millisecond, so serialising
costs nothing measurable. The engine is created once (`engine()`), lazily.
"""

from __future__ import annotations

import ctypes
import threading

from runtime.audio.errors import AudioError
from runtime.once import once

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_BUFFER_MS = 60
# int callback(short *wav, int numsamples, espeak_EVENT *events); the events are not read.
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakEngine:
    """The process's libespeak-ng. Use `engine()` rather than constructing it."""

    def __init__(self) -> None:
        import espeakng_loader

        self._lock = threading.Lock()
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        )
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
        self._lib.espeak_SetVoiceByName.restype = ctypes.c_int
        self._lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
        self._lib.espeak_SetParameter.restype = ctypes.c_int
        self._lib.espeak_Synth.argtypes = (
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        )  # fmt: skip
        self._lib.espeak_Synth.restype = ctypes.c_int
        self._lib.espeak_Synchronize.restype = ctypes.c_int
        self._lib.espeak_SetSynthCallback.argtypes = (_SynthCallback,)
        self._lib.espeak_SetSynthCallback.restype = None

        data_path = espeakng_loader.get_data_path().encode()
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path, _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise AudioError(f"libespeak-ng failed to initialise (code {rate})")
        self.sample_rate: int = rate
        self._chunks: list[bytes] = []
        # Kept on the instance: ctypes callbacks must outlive every call into C.
        self._callback = _SynthCallback(self._on_audio)
        self._lib.espeak_SetSynthCallback(self._callback)
        self._voice = b""

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], samples: int, _events: int) -> int:
        if samples > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, samples * 2))
        return 0  # 0 = carry on synthesising

    def has_voice(self, voice: str) -> bool:
        """Whether espeak-ng knows `voice` (it is then the current voice)."""
        with self._lock:
            return self._select(voice)

    def _select(self, voice: str) -> bool:
        name = voice.encode()
        if name != self._voice:
            if self._lib.espeak_SetVoiceByName(name) != 0:
                return False
            self._voice = name
        return True

    def synthesize(self, text: str, voice: str = "en-us", rate_wpm: int = 175) -> bytes:
        """PCM16 mono at `sample_rate` for `text` (plain text, not SSML)."""
        encoded = text.encode("utf-8") + b"\0"
        with self._lock:
            if not self._select(voice):
                raise AudioError(f"espeak-ng has no voice {voice!r}")
            self._lib.espeak_SetParameter(_PARAM_RATE, rate_wpm, 0)
            self._chunks = []
            status = self._lib.espeak_Synth(
                encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            self._lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if status != 0:
            raise AudioError(f"espeak-ng could not synthesise (code {status})")
        return b"".join(chunks)


@once
def engine() -> EspeakEngine:
    """The process-wide engine, created on first use."""
    return EspeakEngine()
