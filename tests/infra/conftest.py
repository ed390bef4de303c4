"""Shared fixtures of the deployment tests: the Lambda artefact, built once."""

from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "infra" / "lambda" / "build.py"
TIME_UNIT = float(os.environ.get("OPENDOT_TEST_TIME_UNIT", "1.0"))
RUNNING_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def load_builder() -> ModuleType:
    """infra/lambda/build.py is a script, not a package module: load it by path."""
    name = "opendot_lambda_build"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def base_python() -> str:
    """The interpreter the venv was made from: with `-S` it sees the standard
    library and PYTHONPATH, nothing installed in the venv."""
    return str(getattr(sys, "_base_executable", sys.executable))


@pytest.fixture(scope="session")
def lambda_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """(BuildReport, unzipped directory), built once per session for the
    running interpreter's Python version so it can be executed here (3.11 in
    CI: the exact artefact that is deployed)."""
    builder = load_builder()
    out = tmp_path_factory.mktemp("lambda-build")
    report = builder.build(out, python_version=RUNNING_PYTHON)
    unzipped = out / "unzipped"
    with zipfile.ZipFile(report.zip_path) as archive:
        archive.extractall(unzipped)
    return report, unzipped
