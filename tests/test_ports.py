"""A moved port moves the URLs derived from it, in every part that derives one."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.settings import ApiSettings
from runtime.settings import RuntimeSettings

_PORTS_AND_URLS = (
    "PLATFORM_API_PORT",
    "RUNTIME_PORT",
    "OPENDOT_RUNTIME_PUBLIC_HTTP_URL",
    "OPENDOT_RUNTIME_PUBLIC_WS_URL",
    "PLATFORM_API_INTERNAL_URL",
)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in _PORTS_AND_URLS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # the `.env` read is this test's own


def test_defaults_are_the_documented_ports() -> None:
    api, runtime = ApiSettings(), RuntimeSettings()
    assert api.runtime_public_http_url == "http://localhost:8787"
    assert api.runtime_public_ws_url == "ws://localhost:8787/voice"
    assert runtime.platform_api_internal_url == "http://localhost:8788/api"


def test_the_environment_moves_the_derived_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIME_PORT", "9787")
    monkeypatch.setenv("PLATFORM_API_PORT", "9788")
    api, runtime = ApiSettings(), RuntimeSettings()
    assert (api.port, runtime.port) == (9788, 9787)
    assert api.runtime_public_http_url == "http://localhost:9787"
    assert api.runtime_public_ws_url == "ws://localhost:9787/voice"
    assert runtime.platform_api_internal_url == "http://localhost:9788/api"


def test_dotenv_moves_them_too_and_an_explicit_url_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "RUNTIME_PORT=7001\nPLATFORM_API_PORT=7002\n"
        "OPENDOT_RUNTIME_PUBLIC_HTTP_URL=https://voice.example.com\n"
        "OPENDOT_RUNTIME_PUBLIC_WS_URL=\n",  # empty, as .env.example has it: derived
        encoding="utf-8",
    )
    api, runtime = ApiSettings(), RuntimeSettings()
    assert api.runtime_public_http_url == "https://voice.example.com"
    assert api.runtime_public_ws_url == "ws://localhost:7001/voice"
    assert runtime.platform_api_internal_url == "http://localhost:7002/api"
