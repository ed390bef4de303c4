"""Code cites only documents the repository contains, down to the section."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("functions", "runtime", "shared", "opendot", "tests", "infra")
CITATION = re.compile(r"\bdocs/([\w.-]+\.md)(?:\s*§\s*(\d+))?")
# Documents that lived outside the repository (the design kit beside it).
OUTSIDE = re.compile(r"\bPROTOCOLS\b|\bCONTRACTS\b|/work/shared|\.\./shared/")


def _python_files() -> list[Path]:
    return [p for package in SOURCES for p in sorted((ROOT / package).rglob("*.py"))]


def test_every_cited_document_and_section_exists() -> None:
    problems = []
    cited = 0
    for path in _python_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        for before, line in zip(["", *lines], lines, strict=False):
            if "firmware" in before + line:
                continue  # the xiaozhi firmware repository's own docs/, not ours
            for match in CITATION.finditer(line):
                cited += 1
                name, section = match.groups()
                document = ROOT / "docs" / name
                where = f"{path.relative_to(ROOT)}: {match.group(0)}"
                if not document.is_file():
                    problems.append(f"{where}: no such document")
                elif section and not re.search(
                    rf"^## {section}\. ", document.read_text(encoding="utf-8"), re.MULTILINE
                ):
                    problems.append(f"{where}: no section {section}")
    assert cited, "the pattern found no citation at all"
    assert problems == []


def test_no_code_cites_a_document_outside_the_repository() -> None:
    this = Path(__file__).resolve()
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _python_files()
        if path.resolve() != this
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == []
