"""The checked-in OpenAPI document (`functions/openapi.json`) and how it is made.

Regenerate after changing an endpoint: `python -m functions.openapi`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("openapi.json")


def document() -> dict[str, Any]:
    from functions.app import create_app
    from functions.settings import ApiSettings

    settings = ApiSettings(_env_file=None, OPENDOT_ENV="test")  # type: ignore[call-arg]
    doc: dict[str, Any] = create_app(settings).openapi()
    return doc


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {PATH}")
