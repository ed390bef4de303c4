"""A command line described by a table, that imports only the command it runs.

`opendot` (the developer's tool above the deployables) and each deployable's
own entry point (`python -m functions`, `python -m runtime`, what the images
run) list their subcommands as `Command` rows. Each row names the module that
owns the command; that module exposes

    configure(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int

The parser is built for one argv: every command appears in `--help` from the
table alone, and only the module of the command the argv selects is imported
(to configure its options and run it). So `opendot db migrate` never imports
uvicorn or numpy, and works on an install with only the core dependencies.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # ("db", "migrate") for `opendot db migrate`
    module: str  # owns configure() and run()
    help: str  # one line, shown in the parent's --help
    # The project's optional extras the command needs beyond the core
    # dependencies ("runtime,local"); named when one of their modules is missing.
    extras: str = ""


class MissingCommand(Exception):
    """The selected command's module is not part of this installation."""


def load(module_name: str) -> ModuleType | None:
    """The command's module, or None when this build does not contain it."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only "this command's module (or its package) is absent"; a missing
        # dependency inside a present module must surface as the real error.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            return None
        raise


def selected(commands: Sequence[Command], argv: Sequence[str]) -> Command | None:
    """The command whose path starts argv (options may follow it, not precede it)."""
    for command in commands:
        if tuple(argv[: len(command.path)]) == command.path:
            return command
    return None


def build_parser(
    prog: str, description: str, commands: Sequence[Command], argv: Sequence[str] = ()
) -> argparse.ArgumentParser:
    """The full command tree, with options configured for the command argv selects.

    Raises `MissingCommand` when that command's module is not installed here.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    root = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[tuple[str, ...], argparse._SubParsersAction[argparse.ArgumentParser]] = {(): root}
    chosen = selected(commands, argv)
    for command in commands:
        path = command.path
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                group_parser = groups[prefix[:-1]].add_parser(prefix[-1], help=f"{prefix[-1]} ...")
                groups[prefix] = group_parser.add_subparsers(
                    dest=f"command_{depth}", metavar="COMMAND", required=True
                )
        sub = groups[path[:-1]].add_parser(path[-1], help=command.help, description=command.help)
        sub.set_defaults(_command=command)
        if command is chosen:
            module = load(command.module)
            if module is None:
                raise MissingCommand(command.module)
            module.configure(sub)
    return parser


def main(
    prog: str,
    description: str,
    commands: Sequence[Command],
    argv: Sequence[str] | None = None,
) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = selected(commands, argv)
    try:
        args = build_parser(prog, description, commands, argv).parse_args(argv)
        module = load(args._command.module)
        assert module is not None  # build_parser loaded it to configure the command
        return int(module.run(args) or 0)
    except MissingCommand as exc:
        print(f"{prog}: '{exc}' is not part of this installation.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        if chosen is None or not chosen.extras or _ours(exc.name):
            raise
        print(
            f"{prog} {' '.join(chosen.path)}: needs the Python module '{exc.name}', which is "
            f"not installed. Install the extras it needs: pip install 'opendot[{chosen.extras}]'",
            file=sys.stderr,
        )
        return 2


def _ours(module_name: str | None) -> bool:
    """A missing module of this project is a bug, never a missing extra."""
    top = (module_name or "").partition(".")[0]
    return top in {"functions", "runtime", "shared", "opendot"}
