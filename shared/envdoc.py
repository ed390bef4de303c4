"""Writes `.env.example` from the settings classes, so it can never drift.

Every settings class of every part is listed here explicitly; each field's env
alias, default and description become one commented line. A test compares the
generated text with the checked-in file. Regenerate with
`python -m shared.envdoc > .env.example`.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

# (section title, module, class name). Classes that inherit fields from an
# earlier one only contribute the fields they add.
SETTINGS_CLASSES: tuple[tuple[str, str, str], ...] = (
    ("Common (API and runtime)", "shared.settings", "CommonSettings"),
    ("Database tooling (opendot db, opendot up)", "shared.db.settings", "DbSettings"),
    ("Platform API (functions/)", "functions.settings", "ApiSettings"),
    ("Voice runtime (runtime/)", "runtime.settings", "RuntimeSettings"),
    ("Speech and language providers", "runtime.providers.settings", "ProviderSettings"),
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


def _load(module_name: str, class_name: str) -> type[BaseSettings] | None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        return None
    cls = getattr(module, class_name, None)
    return cls if isinstance(cls, type) and issubclass(cls, BaseSettings) else None


def render() -> str:
    lines = [
        "# OpenDot environment variables: every one, its default, one line of meaning.",
        "# Generated from the settings classes by `python -m shared.envdoc`; do not edit by hand.",
        "# Copy to `.env` and change what you need. Empty means unset.",
    ]
    seen: set[str] = set()
    for title, module_name, class_name in SETTINGS_CLASSES:
        cls = _load(module_name, class_name)
        if cls is None:
            continue
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
    for _title, module_name, class_name in SETTINGS_CLASSES:
        cls = _load(module_name, class_name)
        if cls is None:
            continue
        for name, field in cls.model_fields.items():
            if not (field.description or "").strip():
                missing.append(f"{class_name}.{field.alias or name}")
    return missing


if __name__ == "__main__":
    print(render(), end="")
