"""Requirements the code relies on beyond a library's public API are capped."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# Libraries whose private internals we subclass or read, and the module that does.
PRIVATE_USE = {"uvicorn": "runtime/server.py"}


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return {Requirement(line).name: Requirement(line) for line in lines}


def test_a_library_used_through_its_internals_has_an_upper_bound() -> None:
    requirements = _requirements()
    for name, user in PRIVATE_USE.items():
        assert (ROOT / user).is_file()
        spec = requirements[name].specifier
        uppers = [s for s in spec if s.operator in ("<", "<=")]
        assert uppers, f"{name} needs an upper bound: {user} uses its internals"
        assert not spec.contains(Version("1.0")), f"{name}: cap the next breaking release"


def test_the_installed_version_is_inside_the_cap() -> None:
    from importlib.metadata import version

    for name in PRIVATE_USE:
        assert _requirements()[name].specifier.contains(Version(version(name))), name
