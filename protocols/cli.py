"""What both command lines share: version and a dispatcher over sub-command modules.

Each sub-command module exposes ``add_parser(subparsers)``, which adds its
sub-command and sets ``func`` (parsed args -> exit code).  No I/O happens here.
"""
from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from importlib import metadata


def version() -> str:
    """The installed distribution's version."""
    try:
        return metadata.version("queqiao")
    except metadata.PackageNotFoundError:  # a source tree that is not installed
        return "0+unknown"


def command_line(prog: str, description: str, modules: Sequence[str],
                 prepare: Callable[[argparse.ArgumentParser], object] | None = None) -> Callable[..., int]:
    """A ``main(argv)`` for a console script whose sub-commands live in ``modules``; ``prepare`` sees the
    parser before the arguments are parsed (the ground station's bash completion hooks in there)."""

    def build_parser() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=prog, description=description)
        parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
        subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
        for name in modules:
            importlib.import_module(name).add_parser(subparsers)
        return parser

    def main(argv: list[str] | None = None) -> int:
        parser = build_parser()
        if prepare is not None:
            prepare(parser)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)

    main.build_parser = build_parser  # type: ignore[attr-defined]
    return main
