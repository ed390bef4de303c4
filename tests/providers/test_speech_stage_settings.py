"""`base_url` and `api_key_name` on the cloud speech stages (issue 11): the runtime
honours them for the stage's own provider, under the LLM stage's key and network
rules (a stored secret or an offered key, an operator key only to its origin, no
private or metadata address)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
import respx

from runtime.composition import plan_pipeline
from runtime.pipeline.errors import ConfigRefused
from runtime.pipeline.fallback import FallbackSTT, FallbackTTS
from runtime.pipeline.interfaces import TtsOptions
from runtime.providers.azure_speech import AzureSTT, AzureTTS
from runtime.providers.deepgram import DeepgramSTT, DeepgramTTS
from runtime.providers.openai_speech import OpenAISTT
from runtime.providers.settings import ProviderSettings
from shared.secretbox import new_key_text, parse_key, seal

USER = "00000000-0000-4000-8000-000000000001"
DEEPGRAM_KEY = "dg-operator-0123456789abcdef"
OPENAI_KEY = "sk-operator-openai-0123456789"
USER_KEY = "dg-user-own-key-abcdef012345"
KEY_TEXT = new_key_text()


def settings(**values: Any) -> ProviderSettings:
    base: dict[str, Any] = {
        "_env_file": None,
        "DEEPGRAM_API_KEY": DEEPGRAM_KEY,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENDOT_SECRETS_KEY": KEY_TEXT,
    }
    base.update(values)
    return ProviderSettings(**base)


def agent(**stages: dict[str, Any]) -> dict[str, Any]:
    return {"id": "agent-1", "pipeline": [{"id": k, **v} for k, v in stages.items()]}


def user_secret(name: str, value: str = USER_KEY) -> dict[str, str]:
    return {name: seal(parse_key(KEY_TEXT), value, f"{USER}:{name}")}


async def _public(host: str, port: int) -> list[str]:
    return ["104.18.2.115"]


def _first(stage: Any) -> Any:
    return stage.providers[0] if isinstance(stage, FallbackSTT | FallbackTTS) else stage


async def test_a_deepgram_stage_sends_the_users_key_to_its_base_url() -> None:
    a = agent(
        tts={
            "provider": "deepgram",
            "settings": {"base_url": "https://dg.example.com/", "api_key_name": "MY_DG"},
        }
    )
    plan = plan_pipeline(a, settings(), user_secret("MY_DG"), USER)
    tts = _first(plan.pipeline.tts)
    assert isinstance(tts, DeepgramTTS) and plan.notes == []
    tts.endpoint.resolver = _public  # no DNS in tests
    with respx.mock:
        route = respx.post(url__startswith="https://dg.example.com/v1/speak").mock(
            return_value=httpx.Response(200, content=b"\x01\x00" * 100)
        )
        chunks = [c async for c in tts.stream("Hello.", TtsOptions())]
    assert sum(len(c.pcm) for c in chunks) == 200
    assert route.calls.last.request.headers["authorization"] == f"Token {USER_KEY}"


def test_the_operators_key_never_follows_a_stage_base_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    a = agent(stt={"provider": "deepgram", "settings": {"base_url": "https://collector.example"}})
    plan = plan_pipeline(a, settings(), {}, USER)
    assert plan.stages["stt"] == ["local-whisper"]
    assert any("operator's key" in n and "https://collector.example" in n for n in plan.notes)
    assert DEEPGRAM_KEY not in caplog.text


@pytest.mark.parametrize(
    ("stage", "values", "expected"),
    [
        ("tts", {"api_key_name": "OPENDOT_RUNTIME_INTERNAL_SECRET"}, "platform secret"),
        ("tts", {"api_key_name": "HOME"}, "neither a key the operator offers"),
        ("stt", {"base_url": "http://169.254.169.254/latest"}, "address"),
        ("stt", {"base_url": "http://10.0.0.7"}, "address"),
        ("tts", {"base_url": "ftp://dg.example.com"}, "must start with"),
    ],
)
def test_refused_speech_settings_say_why(stage: str, values: dict[str, str], expected: str) -> None:
    a = agent(**{stage: {"provider": "deepgram", "settings": values}})
    plan = plan_pipeline(a, settings(), {}, USER)
    assert plan.stages[stage][0].startswith("local")
    assert any(n.startswith(f"{stage}: deepgram skipped") and expected in n for n in plan.notes)


def test_an_offered_key_name_goes_to_the_origin_the_operator_set() -> None:
    extra = "DG_EU_KEY=https://api.eu.deepgram.com"
    a = agent(
        stt={
            "provider": "deepgram",
            "settings": {"base_url": "https://api.eu.deepgram.com", "api_key_name": "DG_EU_KEY"},
        }
    )
    plan = plan_pipeline(
        a, settings(OPENDOT_PROVIDER_KEY_NAMES=f"DEEPGRAM_API_KEY,{extra}"), {}, USER
    )
    # Allow-listed, but its value is not set on this runtime: skipped, with the reason.
    assert plan.stages["stt"][0].startswith("local")
    assert any("DG_EU_KEY is offered but not set" in n for n in plan.notes)


def test_fallbacks_keep_their_own_defaults() -> None:
    a = agent(
        stt={
            "provider": "deepgram",
            "settings": {
                "base_url": "https://dg.example.com",
                "api_key_name": "MY_DG",
                "fallback_providers": ["openai"],
            },
        }
    )
    plan = plan_pipeline(a, settings(), user_secret("MY_DG"), USER)
    deepgram, openai = plan.pipeline.stt.providers[:2]  # type: ignore[attr-defined]
    assert isinstance(deepgram, DeepgramSTT) and deepgram.endpoint.base_url == (
        "https://dg.example.com"
    )
    assert isinstance(openai, OpenAISTT)
    assert openai.endpoint.base_url == "https://api.openai.com/v1"
    assert openai.endpoint.key is not None and openai.endpoint.key.reveal() == OPENAI_KEY


async def test_an_azure_stage_uses_its_endpoint_and_checks_its_address() -> None:
    public = agent(
        stt={
            "provider": "azure",
            "settings": {"base_url": "wss://speech.example.com/stt", "api_key_name": "MY_AZ"},
        }
    )
    plan = plan_pipeline(public, settings(), user_secret("MY_AZ", "az-user-key"), USER)
    stt = _first(plan.pipeline.stt)
    assert isinstance(stt, AzureSTT)
    assert stt._auth.endpoint == "wss://speech.example.com/stt"  # no region needed
    assert stt._auth.key == "az-user-key"
    loopback = agent(
        tts={"provider": "azure", "settings": {"base_url": "wss://localhost", "api_key_name": "A"}}
    )
    plan = plan_pipeline(loopback, settings(), user_secret("A"), USER)
    tts = _first(plan.pipeline.tts)
    assert isinstance(tts, AzureTTS)
    with pytest.raises(ConfigRefused, match="localhost resolves to"):
        [c async for c in tts.stream("Hello.", TtsOptions())]
