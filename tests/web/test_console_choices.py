"""The console's copies of enumerations the API owns agree with the API.

The speech-to-speech block's choices and the tools block's built-ins and
methods are written out in web/src (the API publishes no descriptor for
them); a value the console offers that the API does not read would be
dropped or refused on save, so the two lists must stay the same.
"""

from __future__ import annotations

import re

from shared.agent_config import _TURN_RANGES, REALTIME_CHOICES
from shared.tools_config import _BUILTINS, METHODS, default_tools
from tests.conftest import REPO_ROOT

PAGES = REPO_ROOT / "web" / "src" / "pages"


def _strings(text: str) -> list[str]:
    return re.findall(r'"([^"]*)"', text)


def test_realtime_choices_match_the_api() -> None:
    source = (PAGES / "realtime-choices.ts").read_text()
    block = source.split("REALTIME_CHOICES = {", 1)[1].split("} as const", 1)[0]
    found = {m[1]: _strings(m[2]) for m in re.finditer(r"(\w+): \[([^\]]*)\]", block)}
    assert found == {k: list(v) for k, v in REALTIME_CHOICES.items()}
    ranges = source.split("TURN_RANGES = {", 1)[1].split("} as const", 1)[0]
    bounds = {
        m[1]: (float(m[2]), float(m[3])) for m in re.finditer(r"(\w+): \[(\S+), (\S+)\]", ranges)
    }
    assert bounds == {k: (float(a), float(b)) for k, (a, b) in _TURN_RANGES.items()}


def test_tools_model_matches_the_api() -> None:
    source = (PAGES / "tools-model.ts").read_text()
    methods = source.split("METHODS = [", 1)[1].split("]", 1)[0]
    assert _strings(methods) == list(METHODS)
    builtins = re.findall(r'\{ key: "(\w+)", label:', source)
    assert builtins == list(_BUILTINS)
    defaults = source.split("const DEFAULTS: Tools = {", 1)[1].split("\n};", 1)[0]
    for key, value in default_tools().items():
        assert re.search(rf"\b{key}: ", defaults), f"{key} has no default in tools-model.ts"
        if isinstance(value, int):
            assert re.search(rf"\b{key}: {value},", defaults), key
