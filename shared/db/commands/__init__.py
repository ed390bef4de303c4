"""`opendot db ...` subcommands (see `opendot.cli.COMMANDS`)."""
