"""api_key_name resolution: only allow-listed operator keys or the user's stored
secrets; platform secrets and other environment variables can never be named."""

from __future__ import annotations

import logging

import pytest

from runtime.pipeline.errors import ConfigRefused
from runtime.providers.keys import KeyResolver
from runtime.providers.settings import ProviderSettings
from shared.secretbox import new_key_text, parse_key, seal
from shared.settings import SettingsError

USER = "00000000-0000-4000-8000-000000000001"
OPERATOR_KEY = "sk-operator-0123456789abcdef"
USER_KEY = "sk-user-fedcba9876543210"


def settings(**extra: object) -> ProviderSettings:
    values: dict[str, object] = {"OPENAI_API_KEY": OPERATOR_KEY, "_env_file": None}
    values.update(extra)
    return ProviderSettings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("OPENDOT_RUNTIME_INTERNAL_SECRET", "platform secret"),
        ("OPENDOT_SECRETS_KEY", "platform secret"),
        ("POSTGRES_URI", "platform secret"),
        ("SUPABASE_JWT_SECRET", "platform secret"),
        ("PATH", "neither a key the operator offers nor one of your stored secrets"),
        ("HOME", "neither a key the operator offers"),
        ("AZURE_SPEECH_KEY", "neither a key the operator offers"),  # set, but not allow-listed
    ],
)
def test_names_an_agent_may_not_use(name: str, expected: str) -> None:
    resolver = KeyResolver(settings(AZURE_SPEECH_KEY="az-secret-value"), {}, USER)
    with pytest.raises(ConfigRefused) as info:
        resolver.resolve(name, provider="llm")
    assert expected in str(info.value)
    assert "az-secret-value" not in str(info.value)


def test_operator_key_is_bound_to_its_origin() -> None:
    key = KeyResolver(settings(), {}, USER).resolve("OPENAI_API_KEY", provider="llm")
    assert key is not None and key.source == "operator"
    assert key.reveal() == OPERATOR_KEY
    key.check_destination("https://api.openai.com/v1/responses", "llm")
    with pytest.raises(ConfigRefused, match=r"only sent to https://api\.openai\.com"):
        key.check_destination("https://collector.example/v1", "llm")


def test_allow_listed_but_unset_key_is_missing_not_refused() -> None:
    assert KeyResolver(settings(), {}, USER).resolve("DEEPGRAM_API_KEY", provider="stt") is None


def test_extra_operator_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk_groqvalue123456")
    s = settings(OPENDOT_PROVIDER_KEY_NAMES="OPENAI_API_KEY,GROQ_API_KEY=https://api.groq.com")
    key = KeyResolver(s, {}, USER).resolve("GROQ_API_KEY", provider="llm")
    assert key is not None and key.reveal() == "gsk_groqvalue123456"
    assert key.origins == ("https://api.groq.com",)
    assert "gsk_groqvalue123456" not in repr(s)


@pytest.mark.parametrize("name", ["OPENDOT_RUNTIME_INTERNAL_SECRET", "POSTGRES_URI"])
def test_operator_cannot_allow_list_platform_secrets(name: str) -> None:
    with pytest.raises((SettingsError, ValueError), match="can never be offered"):
        settings(OPENDOT_PROVIDER_KEY_NAMES=f"OPENAI_API_KEY,{name}")


def test_user_secret_opens_and_goes_anywhere_public() -> None:
    key_text = new_key_text()
    sealed = seal(parse_key(key_text), USER_KEY, f"{USER}:OPENROUTER_KEY")
    resolver = KeyResolver(settings(OPENDOT_SECRETS_KEY=key_text), {"OPENROUTER_KEY": sealed}, USER)
    key = resolver.resolve("OPENROUTER_KEY", provider="llm")
    assert key is not None and key.source == "user" and key.reveal() == USER_KEY
    key.check_destination("https://openrouter.ai/api/v1", "llm")
    assert USER_KEY not in repr(key) and USER_KEY not in str(key)
    assert sealed not in repr(resolver)


def test_user_secret_of_another_user_does_not_open(caplog: pytest.LogCaptureFixture) -> None:
    key_text = new_key_text()
    sealed = seal(parse_key(key_text), USER_KEY, f"{USER}:MY_KEY")
    other = "00000000-0000-4000-8000-000000000002"
    resolver = KeyResolver(settings(OPENDOT_SECRETS_KEY=key_text), {"MY_KEY": sealed}, other)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigRefused, match="could not be decrypted") as info:
        resolver.resolve("MY_KEY", provider="llm")
    assert sealed not in str(info.value) and sealed not in caplog.text


def test_user_secret_without_secrets_key_is_refused() -> None:
    resolver = KeyResolver(settings(), {"MY_KEY": "AAAA"}, USER)
    with pytest.raises(ConfigRefused, match="OPENDOT_SECRETS_KEY"):
        resolver.resolve("MY_KEY", provider="llm")


def test_stored_secret_named_like_a_platform_secret_is_still_refused() -> None:
    key_text = new_key_text()
    name = "OPENDOT_RUNTIME_INTERNAL_SECRET"
    sealed = seal(parse_key(key_text), "x", f"{USER}:{name}")
    resolver = KeyResolver(settings(OPENDOT_SECRETS_KEY=key_text), {name: sealed}, USER)
    with pytest.raises(ConfigRefused, match="platform secret"):
        resolver.resolve(name, provider="llm")


def test_settings_never_print_keys() -> None:
    s = settings(DEEPGRAM_API_KEY="dg-secret-abcdef123")
    assert OPERATOR_KEY not in repr(s) and "dg-secret-abcdef123" not in repr(s)
    assert OPERATOR_KEY not in str(s.model_dump())
