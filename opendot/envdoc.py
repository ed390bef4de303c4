"""Writes `.env.example` from the settings classes, so it can never drift.

Every settings class of every part is listed here explicitly; each field's env
alias, default and description become one commented line. A test compares the
generated text with the checked-in file. Regenerate with
`python -m opendot.envdoc > .env.example`. It lives above the deployables
because it reads the settings of all of them.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from functions.settings import ApiSettings
from opendot.console import ConsoleSettings
from runtime.providers.settings import ProviderSettings
from runtime.settings import RuntimeSettings
from shared.db.settings import DbSettings
from shared.firmware.settings import FirmwareSettings
from shared.settings import CommonSettings

# (section title, class). Classes that inherit fields from an earlier one only
# contribute the fields they add.
SETTINGS_CLASSES: tuple[tuple[str, type[BaseSettings]], ...] = (
    ("Common (API and runtime)", CommonSettings),
    ("Database tooling (opendot db, opendot up)", DbSettings),
    ("Web console served by opendot up", ConsoleSettings),
    ("Firmware updates (API and runtime)", FirmwareSettings),
    ("Platform API (functions/)", ApiSettings),
    ("Voice runtime (runtime/)", RuntimeSettings),
    ("Speech and language providers", ProviderSettings),
)


def _render_default(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def render() -> str:
    lines = [
        "# OpenDot environment variables: every one, its default, one line of meaning.",
        "# Generated from the settings classes by `python -m opendot.envdoc`; do not edit by hand.",
        "# Copy to `.env` and change what you need. Empty means unset.",
    ]
    seen: set[str] = set()
    for title, cls in SETTINGS_CLASSES:
        section: list[str] = []
        for name, field in cls.model_fields.items():
            env_name = field.alias or name.upper()
            if env_name in seen:
                continue
            seen.add(env_name)
            meaning = (field.description or "").strip().replace("\n", " ")
            default = field.get_default(call_default_factory=True)
            section.append(f"# {meaning}" if meaning else f"# {env_name}")
            section.append(f"{env_name}={_render_default(default)}")
        if section:
            lines += ["", f"## {title}", *section]
    return "\n".join(lines) + "\n"


def undocumented() -> list[str]:
    """Env names whose field has no description (a test keeps this empty)."""
    missing = []
    for _title, cls in SETTINGS_CLASSES:
        for name, field in cls.model_fields.items():
            if not (field.description or "").strip():
                missing.append(f"{cls.__name__}.{field.alias or name}")
    return missing


if __name__ == "__main__":
    print(render(), end="")
