"""Build the AWS Lambda package for the platform API (`functions/` + `shared/`).

    python infra/lambda/build.py [--out build/lambda] [--no-compile] [--constraint FILE]

The package holds exactly three things: the `functions` and `shared` source
trees and the project's CORE dependencies (`[project].dependencies` in
pyproject.toml) as manylinux2014 x86_64 CPython 3.11 wheels, which is what the
Lambda `python3.11` runtime (Amazon Linux 2, glibc 2.26) can load. The runtime
extras (numpy, audio, speech engines) never enter it; a test proves it by
importing the handler from the unzipped artefact alone.

Bytecode is precompiled for the target Python (unchecked-hash .pyc) when the
building interpreter is that version: /var/task is read-only, so without it
every cold start compiles every module again (measured: the handler's cold
import takes about half as long with it).

The zip is deterministic (sorted entries, fixed timestamps and modes), so an
unchanged tree gives a byte-identical zip and `sam deploy` skips the code
update. It prints a JSON report (sizes, file count, resolved versions) on stdout.
"""

from __future__ import annotations

import argparse
import compileall
import json
import py_compile
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "build" / "lambda"
ZIP_NAME = "opendot-functions.zip"
SOURCE_PACKAGES = ("functions", "shared")

# Lambda's hard limit for a directly uploaded zip is 50 MB and 250 MB unzipped;
# we refuse to produce anything near either so growth is noticed in CI, not at deploy.
MAX_ZIPPED_BYTES = 40 * 2**20
MAX_UNZIPPED_BYTES = 200 * 2**20

# The interpreter and platform of the Lambda `python3.11` runtime.
LAMBDA_PYTHON = "3.11"
LAMBDA_PLATFORM = "manylinux2014_x86_64"
LAMBDA_TASK_ROOT = "/var/task"

# Never useful at run time on Lambda: bytecode caches written for the build
# machine, console scripts with the build machine's shebang, C/Cython sources
# and test suites shipped inside wheels.
_STRIP_DIRS = frozenset({"__pycache__", "tests", "test"})
_STRIP_SUFFIXES = (".pyc", ".pyo", ".pyx", ".pxd", ".pxi", ".c", ".cpp")
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class BuildError(RuntimeError):
    """The package could not be built, or came out too large."""


@dataclass(frozen=True)
class BuildReport:
    zip_path: str
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    requirements: tuple[str, ...]
    installed: dict[str, str]

    @property
    def zipped_mib(self) -> float:
        return self.zipped_bytes / 2**20


def core_dependencies(pyproject: Path) -> list[str]:
    """The `[project].dependencies` list: what functions/ and shared/ need."""
    with pyproject.open("rb") as handle:
        project = tomllib.load(handle)["project"]
    return [str(requirement) for requirement in project.get("dependencies", [])]


def install_dependencies(
    requirements: Sequence[str],
    target: Path,
    *,
    python_version: str = LAMBDA_PYTHON,
    platform: str = LAMBDA_PLATFORM,
    constraints: Path | None = None,
    pip_args: Sequence[str] = (),
) -> None:
    """`pip install --target` Lambda-compatible binary wheels (never sdists).

    Versions are not copied from the development environment on purpose: some
    of its newest wheels exist only for newer glibc (argon2-cffi-bindings 26
    ships no manylinux2014 wheel), so pip must be free to pick the newest
    version that Lambda can load. Pass a constraints file to lock them.
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        *pip_args,
    ]
    if constraints is not None:
        command += ["--constraint", str(constraints)]
    command += list(requirements)
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BuildError(f"pip install failed ({result.returncode}):\n{result.stderr.strip()}")


def copy_sources(repo_root: Path, target: Path, packages: Sequence[str] = SOURCE_PACKAGES) -> None:
    for package in packages:
        source = repo_root / package
        if not (source / "__init__.py").is_file():
            raise BuildError(f"{source} is not a Python package")
        shutil.copytree(source, target / package, ignore=shutil.ignore_patterns("__pycache__"))


def strip(target: Path) -> int:
    """Remove what Lambda never needs; returns the number of bytes removed."""
    removed = 0
    scripts = target / "bin"  # pip --target's console scripts, not a package's data
    if scripts.is_dir():
        removed += sum(f.stat().st_size for f in scripts.rglob("*") if f.is_file())
        shutil.rmtree(scripts)
    for path in sorted(target.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if not path.exists():
            continue
        if path.is_dir() and path.name in _STRIP_DIRS:
            removed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path)
        elif path.is_file() and path.name.endswith(_STRIP_SUFFIXES):
            removed += path.stat().st_size
            path.unlink()
    return removed


def compile_bytecode(target: Path, python_version: str = LAMBDA_PYTHON) -> None:
    """Precompile unchecked-hash .pyc files so cold starts skip compilation.

    /var/task is read-only on Lambda, so without this every cold start
    compiles every imported module again. Only valid when the building
    interpreter is the runtime's version.
    """
    if f"{sys.version_info.major}.{sys.version_info.minor}" != python_version:
        raise BuildError(f"--compile needs Python {python_version} to build the package")
    ok = compileall.compile_dir(
        str(target),
        quiet=2,
        workers=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        # Record Lambda's path, not the build directory: tracebacks then name
        # the deployed files, and the bytes do not depend on where we built.
        stripdir=str(target),
        prependdir=LAMBDA_TASK_ROOT,
    )
    if not ok:
        raise BuildError("byte-compiling the package failed")


def write_zip(source: Path, zip_path: Path) -> tuple[int, int]:
    """Deterministic zip of `source`; returns (file count, unzipped bytes)."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in source.rglob("*") if p.is_file())
    unzipped = 0
    partial = zip_path.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), _FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = path.suffix == ".so" or bool(path.stat().st_mode & 0o111)
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data)
    partial.replace(zip_path)
    return len(files), unzipped


def installed_versions(target: Path) -> dict[str, str]:
    versions: dict[str, str] = {}
    for dist in metadata.distributions(path=[str(target)]):
        versions[dist.metadata["Name"]] = dist.version
    return dict(sorted(versions.items(), key=lambda item: item[0].lower()))


def build(
    out_dir: Path = DEFAULT_OUT,
    *,
    repo_root: Path = REPO_ROOT,
    compile_pyc: bool | None = None,
    python_version: str = LAMBDA_PYTHON,
    platform: str = LAMBDA_PLATFORM,
    constraints: Path | None = None,
    pip_args: Sequence[str] = (),
) -> BuildReport:
    requirements = core_dependencies(repo_root / "pyproject.toml")
    staging = out_dir / "package"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    install_dependencies(
        requirements,
        staging,
        python_version=python_version,
        platform=platform,
        constraints=constraints,
        pip_args=pip_args,
    )
    versions = installed_versions(staging)
    copy_sources(repo_root, staging)
    strip(staging)
    if compile_pyc is None:
        compile_pyc = f"{sys.version_info.major}.{sys.version_info.minor}" == python_version
    if compile_pyc:
        compile_bytecode(staging, python_version)
    zip_path = out_dir / ZIP_NAME
    files, unzipped = write_zip(staging, zip_path)
    report = BuildReport(
        zip_path=str(zip_path),
        zipped_bytes=zip_path.stat().st_size,
        unzipped_bytes=unzipped,
        files=files,
        requirements=tuple(requirements),
        installed=versions,
    )
    if report.zipped_bytes > MAX_ZIPPED_BYTES or report.unzipped_bytes > MAX_UNZIPPED_BYTES:
        raise BuildError(
            f"package too large: {report.zipped_bytes} bytes zipped, "
            f"{report.unzipped_bytes} unzipped (limits {MAX_ZIPPED_BYTES}/{MAX_UNZIPPED_BYTES})"
        )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ship precompiled .pyc files (default: when this Python is the target version)",
    )
    parser.add_argument(
        "--python-version",
        default=LAMBDA_PYTHON,
        help="Lambda runtime's Python (3.12+ runs on Amazon Linux 2023: use manylinux_2_28)",
    )
    parser.add_argument("--platform", default=LAMBDA_PLATFORM, help="wheel platform tag")
    parser.add_argument(
        "--constraint", type=Path, default=None, help="pip constraints file that locks versions"
    )
    parser.add_argument(
        "--pip-arg",
        action="append",
        default=[],
        help="extra argument for pip, e.g. --pip-arg=--find-links=wheels (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        report = build(
            args.out.resolve(),
            compile_pyc=args.compile,
            python_version=args.python_version,
            platform=args.platform,
            constraints=args.constraint,
            pip_args=args.pip_arg,
        )
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report), indent=2))
    print(
        f"{report.zip_path}: {report.zipped_mib:.1f} MiB zipped, "
        f"{report.unzipped_bytes / 2**20:.1f} MiB unzipped, {report.files} files",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
