"""`opendot` — the one command-line entry point.

Subcommands are listed here explicitly (no plugin registry). Each lives in the
module that owns it and exposes two functions:

    configure(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int

Modules are imported only when their subcommand runs, so `opendot db status`
never pays for numpy or speech models.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

# (command path, owning module, one-line help)
COMMANDS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("db", "migrate"), "shared.db.commands.migrate", "apply the bootstrap and pending migrations"),
    (("db", "status"), "shared.db.commands.status", "list applied and pending migrations"),
    (("db", "reset"), "shared.db.commands.reset", "drop and re-create a local database"),
    (("up",), "shared.up", "run database, API and runtime on embedded defaults"),
    (("api",), "functions.server", "serve the platform API under uvicorn"),
    (("runtime",), "runtime.server", "serve the voice runtime under uvicorn"),
    (("device", "simulate"), "runtime.simulator.cli", "act as a Dot device against a runtime"),
    (("demo",), "runtime.simulator.demo", "claim a simulated Dot and hold a two-turn conversation"),
    (("bench", "db"), "shared.bench.db", "RLS query latency at scale"),
    (("bench", "functions"), "shared.bench.functions", "API cold import, warm request, JWT verify"),
    (("bench", "audio"), "shared.bench.audio", "per-frame audio costs and local engines"),
    (("bench", "runtime"), "shared.bench.runtime", "runtime latency, concurrency and memory"),
    (("bench", "all"), "shared.bench.all", "every benchmark, one after another"),
)


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only "this subcommand's module does not exist"; a missing dependency
        # inside an existing module must surface as the real error.
        if exc.name and module_name.startswith(exc.name):
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opendot", description="OpenDot voice platform")
    root = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[tuple[str, ...], argparse._SubParsersAction[argparse.ArgumentParser]] = {(): root}
    for path, module_name, help_text in COMMANDS:
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                group_parser = groups[prefix[:-1]].add_parser(prefix[-1], help=f"{prefix[-1]} ...")
                groups[prefix] = group_parser.add_subparsers(
                    dest=f"command_{depth}", metavar="COMMAND", required=True
                )
        sub = groups[path[:-1]].add_parser(path[-1], help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        module = _load(module_name)
        if module is not None:
            module.configure(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = _load(args._module)
    if module is None:
        print(f"opendot: '{args._module}' is not part of this build yet.", file=sys.stderr)
        return 2
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
