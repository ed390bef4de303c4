"""Gate: the protocol package keeps 100 % branch coverage (STYLE.md, "Gates we keep").

Runs this directory's other tests in a child pytest under coverage with
branch=True and fails below 100 %. The same check by hand:

    .venv/bin/pytest tests/protocol -p pytest_cov --cov=runtime.protocol \
        --cov-branch --cov-report=term-missing --cov-fail-under=100
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHILD_FLAG = "OPENDOT_PROTOCOL_COVERAGE_CHILD"


@pytest.mark.skipif(os.environ.get(CHILD_FLAG) == "1", reason="inside the coverage run")
def test_protocol_package_has_full_branch_coverage(tmp_path: Path) -> None:
    env = {**os.environ, CHILD_FLAG: "1", "COVERAGE_FILE": str(tmp_path / ".coverage")}
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(HERE),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "pytest_cov",
        "--cov=runtime.protocol",
        "--cov-branch",
        "--cov-report=term-missing:skip-covered",
        "--cov-fail-under=100",
        f"--deselect={Path(__file__).relative_to(ROOT)}",
    ]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
