"""build_pipeline: local engines without keys, cloud providers with keys, fallbacks,
and agent configs that try to exfiltrate a secret or reach a private address."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import respx

from runtime.composition import build_pipeline, plan_pipeline, readiness, shared_vad
from runtime.pipeline.errors import ConfigRefused
from runtime.pipeline.fallback import FallbackLLM, FallbackSTT, FallbackTTS
from runtime.pipeline.interfaces import LlmRequest, Message
from runtime.providers.settings import ProviderSettings
from shared.secretbox import new_key_text, parse_key, seal

USER = "00000000-0000-4000-8000-000000000001"
OPENAI_KEY = "sk-operator-openai-0123456789"
DEEPGRAM_KEY = "dg-operator-0123456789abcdef"
INTERNAL = "internal-secret-that-must-never-leave-0123"


def settings(**values: Any) -> ProviderSettings:
    base: dict[str, Any] = {"_env_file": None, "OPENDOT_RUNTIME_INTERNAL_SECRET": INTERNAL}
    base.update(values)
    return ProviderSettings(**base)


def agent(**stages: dict[str, Any]) -> dict[str, Any]:
    """A compact stored agent: {stage: {provider?, model?, settings}}."""
    pipeline = [{"id": stage_id, **stage} for stage_id, stage in stages.items()]
    return {"id": "00000000-0000-4000-8000-0000000000a1", "name": "Test", "pipeline": pipeline}


def test_no_keys_gives_the_offline_pipeline() -> None:
    plan = plan_pipeline(None, settings())
    assert plan.stages["vad"] == ["silero+smart-turn-v3.2"]  # semantic end of turn
    assert plan.stages["llm"] == ["echo"]
    assert plan.stages["tts"] == ["local-piper", "local-espeak"]
    assert len(plan.stages["stt"]) == 1 and plan.stages["stt"][0].startswith("local")
    assert plan.pipeline.vad is shared_vad()
    assert isinstance(plan.pipeline.tts, FallbackTTS)
    assert any("deepgram" in note and "DEEPGRAM_API_KEY" in note for note in plan.notes)
    assert any(note.startswith("llm: openai skipped") for note in plan.notes)


def test_keys_give_cloud_first_and_local_last() -> None:
    plan = plan_pipeline(None, settings(OPENAI_API_KEY=OPENAI_KEY, DEEPGRAM_API_KEY=DEEPGRAM_KEY))
    assert plan.stages["stt"][0] == "deepgram" and plan.stages["stt"][-1].startswith("local")
    assert plan.stages["llm"] == ["openai-llm"]
    assert plan.stages["tts"][0] == "deepgram"
    assert plan.stages["tts"][-2:] == ["local-piper", "local-espeak"]
    assert isinstance(plan.pipeline.stt, FallbackSTT)
    assert plan.notes == []


def test_provider_endpointing_replaces_the_local_vad() -> None:
    a = agent(vad={"provider": "deepgram"}, stt={"provider": "deepgram"})
    plan = plan_pipeline(a, settings(DEEPGRAM_API_KEY=DEEPGRAM_KEY))
    assert plan.pipeline.vad is None
    # Without the Deepgram key the STT is local, so the local VAD must stay.
    plan = plan_pipeline(a, settings())
    assert plan.pipeline.vad is not None
    assert any("vad: deepgram endpointing" in note for note in plan.notes)


def test_fallback_providers_are_tried_in_order() -> None:
    a = agent(
        stt={"provider": "deepgram", "settings": {"fallback_providers": ["openai"]}},
        tts={"provider": "openai", "settings": {"fallback_providers": ["deepgram"]}},
        llm={"provider": "openai", "settings": {"fallback_providers": ["echo"]}},
    )
    plan = plan_pipeline(a, settings(OPENAI_API_KEY=OPENAI_KEY, DEEPGRAM_API_KEY=DEEPGRAM_KEY))
    assert plan.stages["stt"][:2] == ["deepgram", "openai"]
    assert plan.stages["tts"][:2] == ["openai", "deepgram"]
    assert plan.stages["llm"] == ["openai-llm", "echo"]
    assert isinstance(plan.pipeline.llm, FallbackLLM)


# --- secrets and SSRF through agent config ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("OPENDOT_RUNTIME_INTERNAL_SECRET", "platform secret"),
        ("POSTGRES_URI", "platform secret"),
        ("PATH", "neither a key the operator offers"),
        ("MY_EMPLOYERS_KEY", "neither a key the operator offers"),
    ],
)
def test_secret_exfiltration_is_refused(
    name: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    a = agent(llm={"settings": {"api_key_name": name, "base_url": "https://collector.example/v1"}})
    plan = plan_pipeline(a, settings(OPENAI_API_KEY=OPENAI_KEY), {}, USER)
    assert plan.stages["llm"] == ["echo"]  # nothing that could carry the secret was built
    assert any(expected in note for note in plan.notes)
    assert INTERNAL not in caplog.text and OPENAI_KEY not in caplog.text
    assert all(INTERNAL not in note for note in plan.notes)


def test_operator_key_cannot_follow_an_agent_base_url() -> None:
    a = agent(
        llm={
            "settings": {
                "api_key_name": "OPENAI_API_KEY",
                "base_url": "https://collector.example/v1",
            }
        }
    )
    plan = plan_pipeline(a, settings(OPENAI_API_KEY=OPENAI_KEY), {}, USER)
    assert plan.stages["llm"] == ["echo"]
    assert any("operator's key" in note for note in plan.notes)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8788/api",
        "http://169.254.169.254/latest",
        "http://10.0.0.1/v1",
        "http://[::1]:11434/v1",
        "http://[fd00:ec2::254]/",
    ],
)
def test_private_base_urls_are_refused(base_url: str) -> None:
    a = agent(llm={"settings": {"api_key_name": "", "base_url": base_url}})
    plan = plan_pipeline(a, settings(), {}, USER)
    assert plan.stages["llm"] == ["echo"]
    assert any("address" in note for note in plan.notes)


async def test_hostname_resolving_to_loopback_is_refused_before_sending() -> None:
    a = agent(llm={"settings": {"api_key_name": "", "base_url": "http://localhost:11434/v1"}})
    llm = build_pipeline(a, settings(), {}, USER).llm
    with respx.mock(assert_all_called=False) as router:
        catch_all = router.route().mock(return_value=httpx.Response(200))
        with pytest.raises(ConfigRefused, match="localhost resolves to"):
            [d async for d in llm.stream(LlmRequest("", [Message("user", "hi")]))]
    assert catch_all.call_count == 0


def test_operator_may_allow_a_local_model_server() -> None:
    a = agent(llm={"settings": {"api_key_name": "", "base_url": "http://127.0.0.1:11434/v1"}})
    plan = plan_pipeline(a, settings(OPENDOT_ALLOW_PRIVATE_BASE_URLS=True), {}, USER)
    assert plan.stages["llm"] == ["openai-llm"]


async def test_user_secret_reaches_the_users_endpoint() -> None:
    key_text = new_key_text()
    user_key = "sk-or-v1-user-own-key-123456"
    sealed = seal(parse_key(key_text), user_key, f"{USER}:OPENROUTER_KEY")
    a = agent(
        llm={
            "model": "meta-llama/llama-3-8b",
            "settings": {
                "api": "chat_completions",
                "api_key_name": "OPENROUTER_KEY",
                "base_url": "https://openrouter.ai/api/v1",
            },
        }
    )
    plan = plan_pipeline(
        a, settings(OPENDOT_SECRETS_KEY=key_text), {"OPENROUTER_KEY": sealed}, USER
    )
    assert plan.stages["llm"] == ["openai-llm"]
    llm = plan.pipeline.llm
    llm._resolver = _public  # type: ignore[attr-defined]  # no DNS in tests
    body = b'data: {"choices":[{"delta":{"content":"Hi."}}]}\n\ndata: [DONE]\n\n'
    with respx.mock:
        route = respx.post("https://openrouter.ai/api/v1/chat/completions").mock(
            return_value=httpx.Response(200, content=body)
        )
        text = [d async for d in llm.stream(LlmRequest("", [Message("user", "hi")]))]
    assert text == ["Hi."]
    assert route.calls.last.request.headers["authorization"] == f"Bearer {user_key}"
    assert json.loads(route.calls.last.request.content)["model"] == "meta-llama/llama-3-8b"


async def _public(host: str, port: int) -> list[str]:
    return ["104.18.2.115"]


async def test_llm_failure_falls_back_to_the_listed_provider() -> None:
    a = agent(llm={"settings": {"fallback_providers": ["echo"], "max_retries": 0}})
    llm = build_pipeline(a, settings(OPENAI_API_KEY=OPENAI_KEY), {}, USER).llm
    assert isinstance(llm, FallbackLLM)
    llm.providers[0]._resolver = _public  # type: ignore[attr-defined]
    with respx.mock:
        respx.post("https://api.openai.com/v1/responses").mock(return_value=httpx.Response(503))
        text = "".join([d async for d in llm.stream(LlmRequest("", [Message("user", "hi")]))])
    assert "hi" in text.lower()  # the echo model answered for the failed provider


def test_readiness_never_shows_keys() -> None:
    ready = readiness(settings(OPENAI_API_KEY=OPENAI_KEY))
    assert ready["openaiConfigured"] is True and ready["deepgramConfigured"] is False
    assert OPENAI_KEY not in json.dumps(ready)
