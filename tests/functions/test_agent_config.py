"""The one agent-config definition: defaults, normalisation and legacy upgrades."""

from __future__ import annotations

import json

from shared import agent_config as ac


def _values(stages: list[dict], stage_id: str) -> dict:
    stage = next(s for s in stages if s["id"] == stage_id)
    return {s["key"]: s["value"] for s in stage["settings"]}


def test_defaults_have_four_stages_and_budget() -> None:
    stages = ac.default_stages()
    assert [s["id"] for s in stages] == ["vad", "stt", "llm", "tts"]
    assert ac.latency_budget_ms() == 300 + 650 + 1200 + 900
    assert _values(stages, "vad")["endpointing"] == "300"
    assert _values(stages, "llm")["max_output_tokens"] == "512"
    assert "<chunk>" in _values(stages, "llm")["system_prompt"]
    # A copy, not the module's own data.
    stages[0]["settings"][0]["value"] = "900"
    assert ac.default_setting("vad", "endpointing") == "300"


def test_normalize_keeps_values_and_drops_unknowns() -> None:
    stored = {
        "stages": [
            {"id": "stt", "model": "my-custom", "settings": {"language": "de", "bogus": 1}},
            {
                "id": "vad",
                "model": "not-allowed",
                "settings": [{"key": "endpointing", "value": 500}],
            },
            {"id": "nope"},
        ]
    }
    stages = ac.normalize_pipeline(stored)
    assert [s["id"] for s in stages] == list(ac.STAGE_IDS)
    stt = next(s for s in stages if s["id"] == "stt")
    assert stt["model"] == "my-custom"
    assert _values(stages, "stt")["language"] == "de"
    assert "bogus" not in _values(stages, "stt")
    vad = next(s for s in stages if s["id"] == "vad")
    assert vad["model"] == "endpointing-vad"  # custom models are not allowed for vad
    assert _values(stages, "vad")["endpointing"] == "500"


def test_invalid_values_fall_back_to_defaults_and_numbers_clamp() -> None:
    stages = ac.normalize_pipeline(
        [
            {
                "id": "llm",
                "settings": {
                    "temperature": 9,
                    "timeout_s": "abc",
                    "stop_sequences": ["a", " ", "b", "c", "d", "e"],
                    "extra_headers": [{"key": "X-A", "value": "1"}, {"key": ""}],
                    "json_mode": "true",
                    "extra_parameters": {"top_p": 0.5},
                    "api": "nonsense",
                },
            }
        ]
    )
    llm = _values(stages, "llm")
    assert llm["temperature"] == 2
    assert llm["timeout_s"] == 70
    assert llm["stop_sequences"] == ["a", "b", "c", "d"]
    assert llm["extra_headers"] == {"X-A": "1"}
    assert llm["json_mode"] is True
    assert json.loads(llm["extra_parameters"]) == {"top_p": 0.5}
    assert llm["api"] == "responses"


def test_legacy_upgrades() -> None:
    stages = ac.normalize_pipeline(
        [
            {
                "id": "vad",
                "settings": {"endpointing": 900, "vad_events": True, "speech_final": False},
            },
            {"id": "stt", "settings": {"smart_format": False, "numerals": True}},
            {
                "id": "llm",
                "settings": {
                    "max_output_tokens": "160",
                    "reasoning_effort": "default",
                    "verbosity": "default",
                    "api": "chat-completions",
                    "system_prompt": "Be a pirate.",
                    "stream": True,
                },
            },
        ]
    )
    vad, stt, llm = (_values(stages, k) for k in ("vad", "stt", "llm"))
    assert vad["endpointing"] == "300"
    assert vad["features"] == ["vad_events"]
    assert stt["stt_features"] == ["numerals"]
    assert llm["max_output_tokens"] == "512"
    assert llm["reasoning_effort"] == "low" and llm["verbosity"] == "low"
    assert llm["api"] == "chat_completions"
    assert llm["system_prompt"].startswith("Be a pirate.") and "<chunk>" in llm["system_prompt"]
    assert llm["response_features"] == ["stream"]
    old = ac.normalize_pipeline(
        [{"id": "llm", "settings": {"system_prompt": ac.BASE_SYSTEM_PROMPT}}]
    )
    assert _values(old, "llm")["system_prompt"] == ac.DEFAULT_SYSTEM_PROMPT


def test_compact_round_trip_is_stable() -> None:
    compact = ac.compact_pipeline(ac.default_stages())
    assert compact[0]["settings"]["endpointing"] == "300"
    assert ac.normalize_pipeline(compact) == ac.default_stages()
    assert ac.compact_pipeline(compact) == compact


def test_realtime_normalisation() -> None:
    rt = ac.normalize_realtime(
        {
            "model": "gpt-realtime-mini",
            "voice": "nobody",
            "turnDetection": {"threshold": 7, "type": "server_vad"},
        }
    )
    assert rt["model"] == "gpt-realtime-mini"
    assert rt["voice"] == "marin"
    assert rt["turnDetection"]["threshold"] == 1.0
    assert rt["turnDetection"]["type"] == "server_vad"
    assert ac.normalize_realtime(None) == ac.default_realtime()


def test_setting_value_reads_or_defaults() -> None:
    agent = ac.normalize_agent({"pipeline": [{"id": "vad", "settings": {"endpointing": "false"}}]})
    assert ac.setting_value(agent, "vad", "endpointing") == "false"
    assert ac.setting_int(agent, "vad", "endpointing") is None
    assert ac.setting_int(None, "vad", "endpointing") == 300
    assert ac.setting_value({}, "tts", "chunk_style") == "fast"
    assert ac.setting_bool(agent, "vad", "close_device_after_turn") is True
    assert ac.setting_float(agent, "llm", "temperature") == 1.0
    assert ac.stage_model(None, "llm") == "gpt-5-mini"
    assert ac.stage_provider({"pipeline": [{"id": "llm", "provider": "echo"}]}, "llm") == "echo"
    compact = {"pipeline": ac.compact_pipeline([{"id": "stt", "settings": {"language": "fr"}}])}
    assert ac.setting_value(compact, "stt", "language") == "fr"
    assert agent["architecture"] == "sandwich"


def test_realtime_provider_key_and_fallback() -> None:
    assert ac.default_realtime()["apiKeyName"] == "OPENAI_API_KEY"
    assert ac.default_realtime()["fallback"] == "none"
    rt = ac.normalize_realtime(
        {
            "provider": "azure",
            "baseUrl": "  https://res.openai.azure.com/openai/v1 ",
            "apiKeyName": "MY_AZURE_KEY",
            "model": "my-realtime-deployment",
            "fallback": "pipeline",
            "transcriptionModel": "whisper-1",
        }
    )
    assert rt["provider"] == "azure" and rt["fallback"] == "pipeline"
    assert rt["baseUrl"] == "https://res.openai.azure.com/openai/v1"
    assert (rt["apiKeyName"], rt["model"]) == ("MY_AZURE_KEY", "my-realtime-deployment")
    assert rt["transcriptionModel"] == "whisper-1"
    odd = ac.normalize_realtime(
        {"provider": "acme", "model": "bad name; drop", "apiKeyName": "", "baseUrl": "x" * 600}
    )
    assert odd["provider"] == "openai" and odd["model"] == "gpt-realtime-2"
    assert odd["apiKeyName"] == "" and odd["baseUrl"] == ""
