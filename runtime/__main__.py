"""`python -m runtime`: the runtime image's command line (it holds no `opendot` package).

    python -m runtime runtime            # serve the voice runtime
    python -m runtime device simulate    # a command-line Dot, for smoke tests in the container

The same subcommands, options and modules as `opendot runtime` and `opendot device simulate`.
"""

import sys

from shared.commands import Command, main

COMMANDS = (
    Command(("runtime",), "runtime.server", "serve the voice runtime under uvicorn"),
    Command(
        ("device", "simulate"), "runtime.simulator.cli", "act as a Dot device against a runtime"
    ),
)

if __name__ == "__main__":
    sys.exit(main("python -m runtime", "OpenDot voice runtime", COMMANDS))
