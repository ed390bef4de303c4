"""Speech and language providers, one module per vendor or engine.

Each module implements one of the seams in `runtime.pipeline.interfaces` and
maps its vendor's exceptions to `runtime.pipeline.errors` at its boundary.
Nothing is registered at import time: `runtime.composition` names the
classes it composes, and a module (with its SDK or model) is imported only when
an agent uses it.

Offline engines (the `opendot[local]` extra; models ship in PyPI wheels, no
downloads at run time, each loaded once per process):
- `local_stt.LocalWhisperSTT`: faster-whisper with Whisper tiny.en (int8).
- `local_tts.PiperTTS`: Piper with the en_US "joe" voice, 22.05 kHz.
- `local_tts.EspeakTTS`: libespeak-ng in-process, the light last-resort voice.
- `echo_llm.EchoLLM`: repeats what it heard, labelled "(echo)", when no LLM is
  configured.
"""
