"""What every speech-to-speech session of a process shares.

- Provider settings (read once, lazily) and the target/connector for a session.
- `FallbackBreaker`: after the provider failed for a device (or a browser's
  agent), its next turns skip the provider for a cool-down that doubles with
  each further failure (30 s up to 10 min), so a Dot whose socket closes after
  every turn does not pay a failed connect and an apology on every wake word.
  It only matters for agents with `fallback: "pipeline"`.
- The offline voice of the apology, in the agent's language: Piper for
  English (espeak-ng behind it), espeak-ng's voice for the language otherwise.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runtime.pipeline.interfaces import TTS, TtsOptions
from runtime.realtime.config import RealtimeConfig
from runtime.realtime.connection import open_connection
from runtime.realtime.target import RealtimeTarget, resolve_target

if TYPE_CHECKING:
    from runtime.providers.netguard import Resolver
    from runtime.providers.settings import ProviderSettings
    from runtime.realtime.bridge import Connection

# language -> (apology, espeak-ng voice). The fallback is English.
APOLOGIES: dict[str, tuple[str, str]] = {
    "en": ("Sorry, I can't answer right now. Please try again in a moment.", "en-us"),
    "de": (
        "Entschuldigung, ich kann gerade nicht antworten. Bitte versuche es gleich noch einmal.",
        "de",
    ),
    "es": ("Lo siento, ahora no puedo responder. Inténtalo de nuevo en un momento.", "es"),
    "fr": ("Désolé, je ne peux pas répondre pour le moment. Réessaie dans un instant.", "fr-fr"),
    "it": ("Scusa, ora non posso rispondere. Riprova tra un momento.", "it"),
    "pt": ("Desculpe, não consigo responder agora. Tente de novo daqui a pouco.", "pt-br"),
    "nl": ("Sorry, ik kan nu niet antwoorden. Probeer het zo nog eens.", "nl"),
    "zh": ("抱歉，我现在无法回答，请稍后再试。", "cmn"),
    "ja": ("すみません、今は答えられません。少し後でもう一度試してください。", "ja"),
    "ko": ("죄송합니다, 지금은 대답할 수 없어요. 잠시 후 다시 시도해 주세요.", "ko"),
    "ru": ("Извините, сейчас я не могу ответить. Попробуйте ещё раз чуть позже.", "ru"),
}


def apology(language: str) -> tuple[str, str]:
    """(text, espeak voice) for a BCP 47 tag such as en-US or zh-CN."""
    return APOLOGIES.get(language.split("-")[0].strip().lower(), APOLOGIES["en"])


OfflineVoice = Callable[[str], tuple[TTS, TtsOptions]]


def local_voice(language: str) -> tuple[TTS, TtsOptions]:
    """The offline engines (never a cloud TTS: the apology is for when the cloud failed)."""
    from runtime.pipeline.fallback import FallbackTTS
    from runtime.providers.local_tts import EspeakTTS, PiperTTS

    _text, voice = apology(language)
    if voice == "en-us":
        return FallbackTTS([PiperTTS(), EspeakTTS()]), TtsOptions(voice=voice)
    return EspeakTTS(), TtsOptions(voice=voice)


@dataclass
class FallbackBreaker:
    base_s: float = 30.0
    max_s: float = 600.0
    max_keys: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _open: OrderedDict[str, tuple[float, int]] = field(default_factory=OrderedDict)

    def allows(self, key: str) -> bool:
        entry = self._open.get(key)
        return entry is None or self.clock() >= entry[0]

    def failed(self, key: str) -> float:
        """Record a failure; returns the cool-down in seconds."""
        _until, count = self._open.pop(key, (0.0, 0))
        cooldown = min(self.base_s * 2**count, self.max_s)
        self._open[key] = (self.clock() + cooldown, count + 1)
        while len(self._open) > self.max_keys:
            self._open.popitem(last=False)
        return cooldown

    def succeeded(self, key: str) -> None:
        self._open.pop(key, None)


class RealtimeServices:
    def __init__(
        self,
        settings: ProviderSettings | None = None,
        *,
        offline_voice: OfflineVoice = local_voice,
        resolver: Resolver | None = None,
        breaker: FallbackBreaker | None = None,
    ) -> None:
        self._settings = settings
        self.offline_voice = offline_voice
        self.resolver = resolver
        self.breaker = breaker or FallbackBreaker()

    @functools.cached_property
    def settings(self) -> ProviderSettings:
        if self._settings is None:
            from runtime.providers.settings import ProviderSettings

            return ProviderSettings()
        return self._settings

    def target(
        self, config: RealtimeConfig, secrets: Mapping[str, str], user_id: str | None
    ) -> RealtimeTarget:
        return resolve_target(config, self.settings, secrets, user_id)

    async def connect(self, target: RealtimeTarget) -> Connection:
        if target.provider == "echo":
            from runtime.realtime.loopback import connect_echo

            return await connect_echo()
        return await open_connection(target, resolver=self.resolver)
