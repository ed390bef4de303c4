"""The layering, enforced by reading every module's imports (no module is run).

    opendot/   ─▶ functions/, runtime/, shared/   (tools that span the parts)
    functions/ ─▶ shared/
    runtime/   ─▶ shared/
    shared/    ─▶ nothing of ours

and inside the runtime the Sans-I/O protocol imports neither the pipeline nor
the providers, and the pipeline (the seams) imports no provider: only the
composition root, `runtime/composition.py`, names both. A module name given
to `importlib.import_module` or `importlib.util.find_spec` as a literal
counts as an import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("opendot", "functions", "runtime", "shared")

# (importing module prefix, forbidden imported prefixes)
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("functions", ("runtime", "opendot")),
    ("runtime", ("functions", "opendot")),
    ("shared", ("functions", "runtime", "opendot")),
    ("runtime.protocol", ("runtime.pipeline", "runtime.providers")),
    # The composition root (runtime/composition.py) joins the seams to the providers.
    ("runtime.pipeline", ("runtime.providers", "runtime.composition")),
)
DYNAMIC_IMPORTERS = {"import_module", "find_spec", "__import__"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in DYNAMIC_IMPORTERS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    yield node.lineno, first.value


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(root: Path) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            importer = module_name(path, root)
            for line, imported in imported_names(path, root):
                for source, forbidden in RULES:
                    if not _within(importer, source):
                        continue
                    for target in forbidden:
                        if _within(imported, target):
                            where = path.relative_to(root)
                            found.append(f"{where}:{line}: {importer} imports {imported}")
    return found


def test_the_code_keeps_the_import_rules() -> None:
    assert violations(ROOT) == []


@pytest.mark.parametrize(
    ("path", "source", "culprit"),
    [
        ("functions/app.py", "from runtime.settings import RuntimeSettings\n", "runtime.settings"),
        ("shared/x.py", "import functions.db\n", "functions.db"),
        (
            "shared/x.py",
            "import importlib\nimportlib.import_module('runtime.app')\n",
            "runtime.app",
        ),
        ("runtime/protocol/x.py", "from ..pipeline import vad\n", "runtime.pipeline"),
        ("runtime/protocol/x.py", "from runtime.providers.http import a\n", "runtime.providers"),
        ("runtime/x.py", "from opendot.cli import main\n", "opendot.cli"),
        ("runtime/pipeline/x.py", "from runtime.providers import http\n", "runtime.providers"),
        ("runtime/session/x.py", "from ...functions import db\n", "functions"),
    ],
)
def test_the_checker_sees_each_kind_of_violation(
    tmp_path: Path, path: str, source: str, culprit: str
) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    target = tmp_path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source, encoding="utf-8")
    found = violations(tmp_path)
    assert found and all(culprit in line for line in found), found


def test_the_checker_allows_the_layering(tmp_path: Path) -> None:
    allowed = {
        "opendot/up.py": "import functions.server\nimport runtime.server\nimport shared.db\n",
        "functions/x.py": "from shared.settings import CommonSettings\n",
        "runtime/session/x.py": "from runtime.pipeline import vad\nfrom ..providers import http\n",
        "runtime/protocol/x.py": "from runtime.protocol.errors import ProtocolError\n",
    }
    for path, source in allowed.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
    (tmp_path / "shared").mkdir()
    assert violations(tmp_path) == []
