"""`opendot` — the developer's command line, spanning every deployable.

Subcommands are listed here explicitly (no plugin registry); each lives in the
module that owns it (see `shared.commands` for the contract). Only the module
of the command being run is imported, so `opendot db migrate` needs nothing
beyond the core dependencies and `opendot --help` imports no command at all.
The images run their own, smaller tables (`python -m functions`,
`python -m runtime`) because they do not contain this package.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shared import commands
from shared.commands import Command

DESCRIPTION = "OpenDot voice platform"

# Extras beyond the core dependencies, named when a command misses one of their modules.
RUNTIME = "runtime"
ENGINES = "runtime,local"
EVERYTHING = "runtime,local,embedded"

COMMANDS: tuple[Command, ...] = (
    Command(("db", "migrate"), "shared.db.commands.migrate", "apply bootstrap and migrations"),
    Command(("db", "status"), "shared.db.commands.status", "list applied and pending migrations"),
    Command(("db", "reset"), "shared.db.commands.reset", "drop and re-create a local database"),
    Command(("up",), "opendot.up", "run database, API and runtime locally", EVERYTHING),
    Command(("api",), "functions.server", "serve the platform API under uvicorn", RUNTIME),
    Command(("runtime",), "runtime.server", "serve the voice runtime under uvicorn", RUNTIME),
    Command(("device", "simulate"), "runtime.simulator.cli", "act as a Dot device", RUNTIME),
    Command(
        ("demo",), "runtime.simulator.demo", "claim a simulated Dot, two spoken turns", RUNTIME
    ),
    Command(("bench", "db"), "opendot.bench.db", "RLS query latency at scale"),
    Command(("bench", "functions"), "opendot.bench.functions", "API cold import, requests, JWT"),
    Command(("bench", "ota"), "opendot.bench.ota", "OTA bootstrap and its clean-up"),
    Command(("bench", "firmware"), "opendot.bench.firmware", "OTA answer with rollouts at scale"),
    Command(("bench", "audio"), "opendot.bench.audio", "per-frame audio costs, engines", ENGINES),
    Command(
        ("bench", "tools"), "opendot.bench.tools", "tool-turn overhead, MCP handshake", RUNTIME
    ),
    Command(("bench", "runtime"), "opendot.bench.runtime", "latency, concurrency, memory", ENGINES),
    Command(("bench", "console"), "opendot.bench.console", "web console: JS, history, cold load"),
    Command(("bench", "turns"), "opendot.bench.turns", "turn taking, barge-in", ENGINES),
    Command(
        ("bench", "realtime"), "opendot.bench.realtime", "speech-to-speech bridge costs", RUNTIME
    ),
    Command(("bench", "all"), "opendot.bench.all", "every benchmark, one summary", EVERYTHING),
)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser, with options for the command `argv` selects (see `shared.commands`)."""
    return commands.build_parser("opendot", DESCRIPTION, COMMANDS, argv)


def main(argv: Sequence[str] | None = None) -> int:
    return commands.main("opendot", DESCRIPTION, COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
