"""`python -m functions`: the API image's command line (it holds no `opendot` package).

    python -m functions api                      # serve the platform API
    python -m functions db migrate|status|reset  # the compose migration job

The same subcommands, options and modules as `opendot api` and `opendot db`.
"""

import sys

from shared.commands import Command, main

COMMANDS = (
    Command(("api",), "functions.server", "serve the platform API under uvicorn"),
    Command(
        ("db", "migrate"),
        "shared.db.commands.migrate",
        "apply the bootstrap and pending migrations",
    ),
    Command(("db", "status"), "shared.db.commands.status", "list applied and pending migrations"),
    Command(("db", "reset"), "shared.db.commands.reset", "drop and re-create a local database"),
)

if __name__ == "__main__":
    sys.exit(main("python -m functions", "OpenDot platform API", COMMANDS))
