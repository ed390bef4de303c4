"""Placeholder secrets are refused in production, by the parts that use them."""

import pytest
from pydantic import ValidationError

from shared.db.settings import DbSettings
from shared.settings import DEV_INTERNAL_SECRET, CommonSettings


def test_production_refuses_the_placeholder_internal_secret(monkeypatch) -> None:
    monkeypatch.setenv("OPENDOT_ENV", "production")
    monkeypatch.delenv("OPENDOT_RUNTIME_INTERNAL_SECRET", raising=False)
    with pytest.raises(ValidationError, match="OPENDOT_RUNTIME_INTERNAL_SECRET"):
        CommonSettings(_env_file=None)


def test_production_accepts_a_real_secret(monkeypatch) -> None:
    monkeypatch.setenv("OPENDOT_ENV", "production")
    monkeypatch.setenv("OPENDOT_RUNTIME_INTERNAL_SECRET", "a-real-secret-from-the-vault")
    settings = CommonSettings(_env_file=None)
    assert settings.runtime_internal_secret.get_secret_value() == "a-real-secret-from-the-vault"
    assert DEV_INTERNAL_SECRET not in repr(settings)


def test_migrating_in_production_needs_no_runtime_secret(monkeypatch) -> None:
    monkeypatch.setenv("OPENDOT_ENV", "production")
    monkeypatch.delenv("OPENDOT_RUNTIME_INTERNAL_SECRET", raising=False)
    monkeypatch.setenv("POSTGRES_URI", "postgresql://db.example/opendot")
    assert DbSettings(_env_file=None).postgres_uri == "postgresql://db.example/opendot"
