"""`.env.example` is generated from the settings classes; these tests keep it honest."""

from pathlib import Path

from opendot import envdoc

ROOT = Path(__file__).resolve().parents[1]


def test_env_example_matches_settings() -> None:
    checked_in = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert checked_in == envdoc.render(), (
        ".env.example is stale: run `python -m opendot.envdoc > .env.example`"
    )


def test_every_setting_has_a_meaning() -> None:
    assert envdoc.undocumented() == []


def test_secrets_render_as_their_default_not_a_repr() -> None:
    text = envdoc.render()
    assert "SecretStr(" not in text
    assert "**********" not in text
