"""`opendot bench all`: every benchmark, one after another, and one summary.

Each bench runs in its own interpreter (`python -m opendot.cli bench NAME`), so
one bench's imports, threads and memory cannot skew the next. Their JSON is
collected (a file for benches with `--json PATH`, stdout for benches whose
`--json` is a flag), and a single table lists each issue's targets with
met / not met. The options each bench accepts are read from its own
`configure()`, so a bench that gains `--quick` or changes `--json` needs no
change here. The database benches share one server: `--database-url`, else
POSTGRES_URI, else the embedded server (started once for the whole suite).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opendot.bench.summary import SUMMARISERS, Row, format_summary, suite_row

SUITE_TARGET_S = 600.0  # issue 5: the whole suite in under 10 minutes on 2 cores
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Bench:
    name: str
    module: str
    # Used when the bench has no `--quick` of its own (only the options it accepts).
    quick_args: tuple[str, ...] = ()


BENCHES: tuple[Bench, ...] = (
    Bench("db", "opendot.bench.db", ("--iterations", "30")),
    Bench(
        "functions",
        "opendot.bench.functions",
        ("--requests", "50", "--rounds", "2", "--imports", "2"),
    ),
    Bench("firmware", "opendot.bench.firmware"),
    Bench("audio", "opendot.bench.audio"),
    Bench("runtime", "opendot.bench.runtime"),
    Bench("realtime", "opendot.bench.realtime"),
)


@dataclass
class Outcome:
    name: str
    command: list[str]
    seconds: float = 0.0
    exit_code: int | None = None
    results: Any = None
    error: str | None = None
    details: str = field(default="", repr=False)  # the bench's own table, if it printed one

    @property
    def ok(self) -> bool:
        return self.error is None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", help="also write every result as JSON here")
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=None,
        help="PostgreSQL server for the db and functions benches "
        "(default: POSTGRES_URI, else the embedded server in OPENDOT_DATA_DIR)",
    )
    parser.add_argument("--quick", action="store_true", help="every bench in its smallest mode")
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help=f"comma-separated subset of: {', '.join(b.name for b in BENCHES)}",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds one bench may take before it is stopped ({DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument("--details", action="store_true", help="also print each bench's own table")
    parser.add_argument(
        "--from-json",
        metavar="PATH",
        type=Path,
        help="run nothing: print the summary of a run saved with --json",
    )


def selected(only: str | None) -> list[Bench]:
    if not only:
        return list(BENCHES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {b.name: b for b in BENCHES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"opendot bench all: unknown bench(es): {', '.join(unknown)}")
    return [known[n] for n in names]


def accepted_options(module: str) -> dict[str, argparse.Action]:
    """The options `module.configure()` defines, by option string."""
    parser = argparse.ArgumentParser(add_help=False)
    importlib.import_module(module).configure(parser)
    return {option: action for action in parser._actions for option in action.option_strings}


def command_for(
    bench: Bench,
    options: dict[str, argparse.Action],
    *,
    quick: bool,
    database_url: str | None,
    json_path: Path,
) -> tuple[list[str], bool]:
    """The child's argv and whether its JSON goes to `json_path` (else to stdout)."""
    args = [sys.executable, "-m", "opendot.cli", "bench", bench.name]
    to_file = False
    json_option = options.get("--json")
    if json_option is not None:
        if json_option.nargs == 0:  # a flag: JSON replaces the table on stdout
            args.append("--json")
        else:
            args += ["--json", str(json_path)]
            to_file = True
    if quick:
        if "--quick" in options:
            args.append("--quick")
        else:
            pairs = zip(bench.quick_args[::2], bench.quick_args[1::2], strict=True)
            args += [
                part for option, value in pairs if option in options for part in (option, value)
            ]
    if database_url and "--database-url" in options:
        args += ["--database-url", database_url]
    return args, to_file


def parse_json_output(text: str) -> Any:
    """The JSON document in a bench's stdout (tolerates lines printed before it)."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    for index, char in enumerate(text):
        if char in "[{" and (index == 0 or text[index - 1] == "\n"):
            with contextlib.suppress(ValueError):
                return decoder.raw_decode(text, index)[0]
    raise ValueError("no JSON document in the bench's output")


def run_one(
    bench: Bench, *, quick: bool, database_url: str | None, timeout: float, workdir: Path
) -> Outcome:
    json_path = workdir / f"{bench.name}.json"
    try:
        options = accepted_options(bench.module)
    except (ImportError, AttributeError) as exc:
        return Outcome(bench.name, [], error=f"not available in this build: {exc}")
    command, to_file = command_for(
        bench, options, quick=quick, database_url=database_url, json_path=json_path
    )
    outcome = Outcome(bench.name, command)
    _progress(f"{bench.name}: {' '.join(command[3:])}")
    started = time.perf_counter()
    # stderr passes through (progress lines); stdout is the table or the JSON.
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
        command, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_group(process)
        outcome.seconds = time.perf_counter() - started
        outcome.error = f"stopped after {timeout:g} s (timeout)"
        return outcome
    except BaseException:
        _stop_group(process)
        raise
    outcome.seconds = time.perf_counter() - started
    outcome.exit_code = process.returncode
    if process.returncode != 0:
        outcome.error = f"exited with code {process.returncode}"
        outcome.details = stdout
        return outcome
    try:
        if to_file:
            outcome.results = json.loads(json_path.read_text())
            outcome.details = stdout
        else:
            outcome.results = parse_json_output(stdout)
    except (OSError, ValueError) as exc:
        outcome.error = f"no valid JSON: {exc}"
        outcome.details = stdout
    return outcome


def _stop_group(process: subprocess.Popen[str]) -> None:
    """The bench and anything it started (the runtime bench's server, for one)."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _progress(line: str) -> None:
    print(f"bench all: {line}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }


def summarise(outcomes: Sequence[Outcome], total_s: float, *, quick: bool) -> list[Row]:
    rows: list[Row] = []
    for outcome in outcomes:
        summariser = SUMMARISERS.get(outcome.name)
        if not outcome.ok or summariser is None:
            rows.append(Row(outcome.name, "bench ran", outcome.error or "no summary", "", None))
            continue
        rows += summariser(outcome.results, quick)
    rows.append(suite_row(total_s, SUITE_TARGET_S, quick=quick, complete=len(outcomes) == 4))
    return rows


@contextlib.contextmanager
def database_server(url: str | None, needed: bool) -> Iterator[str | None]:
    """One server URL for every database bench (the embedded one started once)."""
    if url or not needed:
        yield url
        return
    from shared.db.commands.target import resolve_url

    with resolve_url(argparse.Namespace(database_url=None)) as resolved:
        yield resolved


def resummarise(path: Path) -> str:
    """The summary table of a saved `--json` document, with today's targets."""
    document = json.loads(path.read_text())
    outcomes = [
        Outcome(
            name,
            list(bench.get("command") or []),
            seconds=float(bench.get("seconds") or 0.0),
            exit_code=bench.get("exit_code"),
            results=bench.get("results"),
            error=bench.get("error"),
        )
        for name, bench in document["benches"].items()
    ]
    rows = summarise(outcomes, document["total_seconds"], quick=bool(document.get("quick")))
    seconds = {o.name: o.seconds for o in outcomes}
    return format_summary(rows, outcomes_seconds=seconds, info=document.get("machine"))


def run(args: argparse.Namespace) -> int:
    if args.from_json:
        try:
            print(resummarise(args.from_json))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            print(f"opendot bench all: cannot read {args.from_json}: {exc}", file=sys.stderr)
            return 1
        return 0
    benches = selected(args.only)
    info = machine()
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    needs_db = any(b.name in ("db", "functions") for b in benches)
    with (
        tempfile.TemporaryDirectory(prefix="opendot-bench-") as tmp,
        database_server(args.database_url, needs_db) as url,
    ):
        for bench in benches:
            outcome = run_one(
                bench, quick=args.quick, database_url=url, timeout=args.timeout, workdir=Path(tmp)
            )
            _progress(
                f"{bench.name}: {'done' if outcome.ok else outcome.error} "
                f"in {outcome.seconds:.1f} s"
            )
            outcomes.append(outcome)
    total_s = time.perf_counter() - started
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    rows = summarise(outcomes, total_s, quick=args.quick)
    if args.details:
        for outcome in outcomes:
            if outcome.details.strip():
                print(f"=== bench {outcome.name} ===\n{outcome.details.rstrip()}\n")
    print(format_summary(rows, outcomes_seconds={o.name: o.seconds for o in outcomes}, info=info))
    if args.json:
        document = {
            "machine": info,
            "quick": args.quick,
            "total_seconds": round(total_s, 1),
            "benches": {
                o.name: {
                    "command": o.command[2:],
                    "seconds": round(o.seconds, 1),
                    "exit_code": o.exit_code,
                    "error": o.error,
                    "results": o.results,
                }
                for o in outcomes
            },
            "summary": [asdict(r) for r in rows],
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n")
        _progress(f"wrote {path}")
    return 0 if all(o.ok for o in outcomes) else 1
