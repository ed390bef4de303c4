"""What the speech-to-speech tests share: a speech-to-speech agent, the runtime's
realtime services pointed at the loopback fake provider, and SDK schema checks."""

from __future__ import annotations

import json
import uuid
from typing import Any

from openai.types.realtime import RealtimeClientEvent
from pydantic import TypeAdapter

from runtime.pipeline.doubles import FunctionTTS
from runtime.pipeline.interfaces import TTS, TtsOptions
from runtime.providers.settings import ProviderSettings
from runtime.realtime.fake import FakeSession
from runtime.realtime.services import RealtimeServices

OPERATOR_KEY = "sk-test-operator-realtime-0123456789"
_CLIENT_EVENTS = TypeAdapter(RealtimeClientEvent)


def s2s_agent(**realtime: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "name": "Realtime Dot",
        "description": "speaks without a pipeline",
        "architecture": "speech_to_speech",
        "realtime": {"turnDetection": {"type": "server_vad", "silenceDurationMs": 300}, **realtime},
    }


class Apologies:
    """The offline voice: a tone double that remembers what it was asked to say."""

    def __init__(self) -> None:
        self.tts = FunctionTTS(name="offline-double")
        self.languages: list[str] = []

    def __call__(self, language: str) -> tuple[TTS, TtsOptions]:
        self.languages.append(language)
        return self.tts, TtsOptions()


def services_for(base_url: str, apologies: Apologies | None = None, **env: Any) -> RealtimeServices:
    settings = ProviderSettings(  # type: ignore[call-arg]
        _env_file=None,
        OPENAI_API_KEY=OPERATOR_KEY,
        OPENAI_BASE_URL=base_url,
        OPENDOT_ALLOW_PRIVATE_BASE_URLS=True,
        **env,
    )
    return RealtimeServices(settings, offline_voice=apologies or Apologies())


def assert_schema(session: FakeSession) -> None:
    """Every client event the runtime sent validates against the OpenAI SDK's models."""
    for event in session.events:
        _CLIENT_EVENTS.validate_python(json.loads(event.to_json()))
