"""The runtime's composition root: builds one session's `Pipeline` from its agent,
the operator's settings and the user's stored secrets.

It lives beside the app, not inside `pipeline/`, because it is the one place
that names both the seams (`runtime.pipeline`) and the providers that implement
them (`runtime.providers`): the pipeline imports no provider.

Each stage gets an ordered provider list: the stage's provider, then its
`fallback_providers`, then the offline engine. A provider that cannot be offered
(no key configured, a refused key name or address) is skipped with a logged
reason, which `plan_pipeline` also returns as `notes` for the runtime to show.
Rules of the lists:

- STT ends with local Whisper; LLM falls back to the labelled echo model only
  when no real LLM could be built (an echo answer after a failed turn would be
  a lie; the runtime speaks its apology instead); TTS always ends with Piper
  and then espeak-ng, so an apology can be spoken even when the cloud is gone.
- `vad` is None when the VAD stage names the same provider as the STT that
  will run first and that provider endpoints itself (Deepgram, Azure).

Everything heavy (local models, SDKs) is imported lazily, the first time a
provider is built.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.once import once
from runtime.pipeline.errors import ConfigRefused
from runtime.pipeline.fallback import FallbackLLM, FallbackSTT, FallbackTTS
from runtime.pipeline.interfaces import LLM, STT, TTS, VAD, Pipeline
from runtime.providers.keys import KeyResolver, ProviderKey
from runtime.providers.netguard import precheck_url
from runtime.providers.settings import (
    DEFAULT_OPENAI_BASE_URL,
    ProviderSettings,
    origin_of,
)
from runtime.session.context import PipelineFactory
from shared import agent_config

log = logging.getLogger(__name__)

Agent = Mapping[str, Any]

LLM_SETTING_KEYS = (
    "api",
    "base_url",
    "temperature",
    "max_output_tokens",
    "reasoning_effort",
    "verbosity",
    "response_features",
    "stop_sequences",
    "seed",
    "json_mode",
    "extra_headers",
    "timeout_s",
    "max_retries",
    "requests_per_second",
    "extra_parameters",
)
# Cloud speech provider -> (its operator key, the settings field of its address).
_SPEECH_DEFAULTS: dict[str, tuple[str, str | None]] = {
    "deepgram": ("DEEPGRAM_API_KEY", "deepgram_base_url"),
    "openai": ("OPENAI_API_KEY", "openai_base_url"),
    "azure": ("AZURE_SPEECH_KEY", None),
}
_SELF_ENDPOINTING = frozenset({"deepgram", "azure"})


@dataclass
class PipelinePlan:
    pipeline: Pipeline
    # Provider names per stage, in the order they will be tried.
    stages: dict[str, list[str]] = field(default_factory=dict)
    # Why a configured provider was skipped; safe to show to the agent's owner.
    notes: list[str] = field(default_factory=list)


class _Skip(Exception):
    """A provider that cannot be offered for this session (the message says why)."""


# --- process-wide local engines -----------------------------------------------------------------


@once
def shared_vad() -> VAD:
    """One Silero VAD per process, so windows of all sessions batch together, judged by
    one Smart Turn model when an agent asks for semantic end of turn (and the model is
    installed; without it every agent gets its fixed endpointing silence)."""
    from runtime.pipeline.semantic_vad import SemanticVAD
    from runtime.pipeline.smart_turn import SmartTurn, SmartTurnMissing, model_path
    from runtime.pipeline.vad import SileroVAD

    silero = SileroVAD()
    try:
        model_path()
    except SmartTurnMissing as exc:
        log.warning("semantic end of turn unavailable: %s", exc)
        return silero
    return SemanticVAD(silero, SmartTurn())


def _local_stt() -> STT:
    from runtime.providers.local_stt import LocalWhisperSTT

    return LocalWhisperSTT()


def _local_tts() -> list[TTS]:
    from runtime.providers.local_tts import EspeakTTS, PiperTTS

    return [PiperTTS(), EspeakTTS()]


def _echo() -> LLM:
    from runtime.providers.echo_llm import EchoLLM

    return EchoLLM()


# --- building -----------------------------------------------------------------------------------


def _setting(agent: Agent | None, stage: str, key: str) -> Any:
    try:
        return agent_config.setting_value(agent, stage, key)
    except KeyError:
        return None


def _model_for(agent: Agent | None, stage: str, provider: str, fits: Callable[[str], bool]) -> str:
    """The stage's model when it belongs to `provider`, else "" (the provider's default)."""
    if agent_config.stage_provider(agent, stage) != provider:
        return ""
    model = agent_config.stage_model(agent, stage)
    return model if fits(model) else ""


class _Builder:
    def __init__(
        self,
        agent: Agent | None,
        settings: ProviderSettings,
        secrets: Mapping[str, str] | None,
        user_id: str | None,
    ) -> None:
        self.agent = agent
        self.settings = settings
        self.secrets = dict(secrets or {})
        self.keys = KeyResolver(settings, self.secrets, user_id)
        self.notes: list[str] = []

    # -- keys

    def _speech_key(self, name: str, base_url: str | None, provider: str) -> ProviderKey:
        """A speech provider's key: the user's stored secret of that name, else the operator's."""
        if name in self.secrets:
            key = self.keys.resolve(name, provider=provider)
            if key is not None:
                return key
        value = {
            "OPENAI_API_KEY": self.settings.openai_api_key,
            "DEEPGRAM_API_KEY": self.settings.deepgram_api_key,
            "AZURE_SPEECH_KEY": self.settings.azure_speech_key,
        }.get(name)
        if value is None or not value.get_secret_value():
            raise _Skip(f"{provider} is not configured on this runtime ({name} is not set)")
        origins = (origin_of(base_url),) if base_url else ()
        return ProviderKey(name, "operator", origins, value)

    def _endpoint(self, provider: str, base_url: str, key: ProviderKey) -> Any:
        from runtime.providers.endpoint import Endpoint

        return Endpoint.from_settings(provider, base_url, key, self.settings)

    # -- stages

    def candidates(self, stage: str) -> list[str]:
        names = [agent_config.stage_provider(self.agent, stage)]
        extra = _setting(self.agent, stage, "fallback_providers") or []
        if isinstance(extra, list):
            names += [str(n) for n in extra]
        return list(dict.fromkeys(n for n in names if n))

    def attempt(self, stage: str, provider: str, make: Callable[[], Any]) -> Any | None:
        try:
            return make()
        except (_Skip, ConfigRefused) as exc:
            note = f"{stage}: {provider} skipped: {exc}"
            log.warning("%s", note)
            self.notes.append(note)
            return None

    def _speech_target(self, stage: str, provider: str) -> tuple[str | None, ProviderKey]:
        """(base URL, key) of a cloud speech provider for `stage`.

        The stage's `base_url` and `api_key_name` apply to its own provider (a
        fallback uses its defaults), under the LLM's rules: the name is a stored
        secret or a key the operator offers, and an operator key goes only to its
        origin; the URL must be public unless the operator allows private ones
        (checked here, again on resolution and again when connecting). Empty
        means the operator's address and key for the provider.
        """
        key_name, base_field = _SPEECH_DEFAULTS[provider]
        default_base = str(getattr(self.settings, base_field)) if base_field else None
        own = agent_config.stage_provider(self.agent, stage) == provider
        custom = name = ""
        if own:
            custom = str(_setting(self.agent, stage, "base_url") or "").strip().rstrip("/")
            name = str(_setting(self.agent, stage, "api_key_name") or "").strip()
        if custom:
            precheck_url(
                custom,
                allow_private=self.settings.allow_private_base_urls,
                provider=provider,
                what=f"{stage} base_url",
                schemes=("https", "wss") if provider == "azure" else ("http", "https"),
            )
        base = custom or default_base
        if name:
            key = self.keys.resolve(name, provider=provider)
            if key is None:
                raise _Skip(f"api_key_name {name} is offered but not set on this runtime")
        else:
            key = self._speech_key(key_name, default_base, provider)
        if base:
            key.check_destination(base, provider)
        return base, key

    def stt(self, provider: str) -> STT | None:
        if provider == "local":
            return _local_stt()
        if provider == "azure":
            from runtime.providers.azure_speech import AzureSTT

            return AzureSTT(self._azure_auth("stt"), timeout_s=self.settings.provider_timeout_s)
        if provider not in _SPEECH_DEFAULTS:
            raise _Skip(f"unknown stt provider {provider!r}")
        base, key = self._speech_target("stt", provider)
        assert base is not None
        endpoint = self._endpoint(provider, base, key)
        if provider == "deepgram":
            from runtime.providers.deepgram import DeepgramSTT

            model = _model_for(self.agent, "stt", provider, lambda m: not m.startswith("gpt-"))
            return DeepgramSTT(endpoint, model=model)
        from runtime.providers.openai_speech import OpenAISTT

        model = _model_for(self.agent, "stt", provider, lambda m: m.startswith(("gpt-", "whisper")))
        return OpenAISTT(endpoint, model=model)

    def tts(self, provider: str) -> TTS | None:
        if provider == "local":
            return None  # the local engines end every list anyway
        if provider == "azure":
            from runtime.providers.azure_speech import AzureTTS

            voice = _model_for(self.agent, "tts", provider, lambda m: "Neural" in m)
            auth = self._azure_auth("tts")
            return AzureTTS(auth, voice=voice, timeout_s=self.settings.provider_timeout_s)
        if provider not in _SPEECH_DEFAULTS:
            raise _Skip(f"unknown tts provider {provider!r}")
        base, key = self._speech_target("tts", provider)
        assert base is not None
        endpoint = self._endpoint(provider, base, key)
        if provider == "deepgram":
            from runtime.providers.deepgram import DeepgramTTS

            model = _model_for(self.agent, "tts", provider, lambda m: m.startswith("aura"))
            return DeepgramTTS(endpoint, model=model)
        from runtime.providers.openai_speech import OpenAITTS

        model = _model_for(self.agent, "tts", provider, lambda m: m.startswith(("gpt-", "tts-")))
        return OpenAITTS(endpoint, model=model)

    def _azure_auth(self, stage: str) -> Any:
        from runtime.providers.azure_speech import AzureAuth

        endpoint, key = self._speech_target(stage, "azure")
        region = self.settings.azure_speech_region or ""
        if not endpoint and not region:
            raise _Skip("azure needs AZURE_SPEECH_REGION (or the stage's base_url)")
        return AzureAuth(
            key.reveal(),
            region,
            endpoint=endpoint,
            allow_private=self.settings.allow_private_base_urls,
        )

    def llm(self, provider: str) -> LLM | None:
        if provider == "echo":
            return _echo()
        if provider != "openai":
            raise _Skip(f"unknown llm provider {provider!r}")
        from runtime.providers.openai_llm import OpenAICompatibleLLM, pacer_for

        values = {k: _setting(self.agent, "llm", k) for k in LLM_SETTING_KEYS}
        custom = str(values.get("base_url") or "").strip()
        base_url = custom or self.settings.openai_base_url
        name = str(_setting(self.agent, "llm", "api_key_name") or "").strip()
        key = self.keys.resolve(name, provider="llm") if name else None
        if key is None and origin_of(base_url) == origin_of(DEFAULT_OPENAI_BASE_URL):
            raise _Skip(
                f"no key for {base_url}"
                + (f" ({name} is not configured)" if name else " (api_key_name is empty)")
            )
        rate = float(values.get("requests_per_second") or 50)
        scope = str((self.agent or {}).get("id") or "no-agent")
        return OpenAICompatibleLLM(
            settings={k: v for k, v in values.items() if v is not None},
            model=agent_config.stage_model(self.agent, "llm"),
            base_url=base_url,
            key=key,
            allow_private=self.settings.allow_private_base_urls,
            pacer=pacer_for(scope, rate),
            first_byte_timeout_s=self.settings.provider_first_byte_timeout_s,
            connect_timeout_s=self.settings.provider_connect_timeout_s,
        )


def plan_pipeline(
    agent: Agent | None,
    settings: ProviderSettings,
    secrets: Mapping[str, str] | None = None,
    user_id: str | None = None,
) -> PipelinePlan:
    b = _Builder(agent, settings, secrets, user_id)
    first_output = settings.provider_first_byte_timeout_s

    stt_names: list[tuple[str, STT]] = []
    for name in b.candidates("stt"):
        stt = b.attempt("stt", name, functools.partial(b.stt, name))
        if stt is not None:
            stt_names.append((name, stt))
    if not any(name == "local" for name, _ in stt_names):
        stt_names.append(("local", _local_stt()))

    llms: list[LLM] = []
    for name in b.candidates("llm"):
        llm = b.attempt("llm", name, functools.partial(b.llm, name))
        if llm is not None:
            llms.append(llm)
    if not llms:
        llms.append(_echo())

    ttss: list[TTS] = []
    for name in b.candidates("tts"):
        tts = b.attempt("tts", name, functools.partial(b.tts, name))
        if tts is not None:
            ttss.append(tts)
    ttss += _local_tts()

    first_stt = stt_names[0][0]
    vad_provider = agent_config.stage_provider(agent, "vad")
    vad: VAD | None
    if first_stt in _SELF_ENDPOINTING and vad_provider == first_stt:
        vad = None  # the STT provider's own endpointing ends utterances
    else:
        vad = shared_vad()
        if vad_provider in _SELF_ENDPOINTING and vad_provider != first_stt:
            b.notes.append(
                f"vad: {vad_provider} endpointing needs {vad_provider} speech recognition; "
                "using the local Silero VAD"
            )

    stt_list = [stt for _, stt in stt_names]
    pipeline = Pipeline(
        vad=vad,
        stt=stt_list[0] if len(stt_list) == 1 else FallbackSTT(stt_list),
        llm=llms[0] if len(llms) == 1 else FallbackLLM(llms, first_output_timeout_s=first_output),
        tts=FallbackTTS(ttss, first_output_timeout_s=first_output),
    )
    return PipelinePlan(
        pipeline=pipeline,
        stages={
            "vad": [vad.name] if vad is not None else [f"{first_stt} (provider endpointing)"],
            "stt": [s.name for s in stt_list],
            "llm": [m.name for m in llms],
            "tts": [t.name for t in ttss],
        },
        notes=b.notes,
    )


def build_pipeline(
    agent: Agent | None,
    settings: ProviderSettings,
    secrets: Mapping[str, str] | None = None,
    user_id: str | None = None,
) -> Pipeline:
    """The session's pipeline (see `plan_pipeline` for the skipped providers' reasons)."""
    return plan_pipeline(agent, settings, secrets, user_id).pipeline


@functools.lru_cache(maxsize=1)
def _provider_settings() -> ProviderSettings:
    return ProviderSettings()


def pipeline_factory() -> PipelineFactory:
    """The factory `create_app` gives sessions; the operator's provider settings are
    read on the first session, so an app built with test doubles never reads them."""

    def make(agent: Agent | None, secrets: Mapping[str, str], user_id: str | None) -> Pipeline:
        return build_pipeline(agent, _provider_settings(), secrets, user_id=user_id)

    return make


def warm_local_engines() -> list[str]:
    """Load the offline engines a keyless pipeline uses, once per process, so the first
    spoken turn does not pay for them (about a second of Whisper + Piper load here).
    Returns the names of the engines that loaded; a missing `local` extra is logged."""
    from runtime.pipeline.smart_turn import smart_turn_model
    from runtime.pipeline.vad import silero_model
    from runtime.providers.local_stt import whisper_engine
    from runtime.providers.local_tts import piper_voice

    loaded = []
    for name, load in (
        ("silero", silero_model),
        ("smart-turn", smart_turn_model),
        ("whisper", whisper_engine),
        ("piper", piper_voice),
    ):
        try:
            load()
        except Exception as exc:  # an engine we cannot load is one the factory will skip
            log.warning("could not preload %s: %s", name, exc)
        else:
            loaded.append(name)
    return loaded


def readiness(settings: ProviderSettings | None = None) -> dict[str, Any]:
    """Which providers this runtime can offer (for /health); never a key."""
    s = settings or _provider_settings()

    def has(value: Any) -> bool:
        return value is not None and bool(value.get_secret_value())

    return {
        "openaiConfigured": has(s.openai_api_key),
        "deepgramConfigured": has(s.deepgram_api_key),
        "azureConfigured": has(s.azure_speech_key) and bool(s.azure_speech_region),
        "allowPrivateBaseUrls": s.allow_private_base_urls,
        "local": True,
    }
