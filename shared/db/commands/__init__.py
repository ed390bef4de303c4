"""`opendot db ...` subcommands (see `shared.cli.COMMANDS`)."""
