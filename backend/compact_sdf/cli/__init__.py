"""The ``compact-sdf`` command line: one sub-module per command group, one dispatcher.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers)`` which adds its
sub-commands and sets ``func`` (a callable taking the parsed args and returning an
exit code). User errors print one line and exit non-zero; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from compact_sdf import __version__
from compact_sdf.errors import CompactSDFError

COMMAND_MODULES = (
    "compact_sdf.cli.prepare",
    "compact_sdf.cli.train",
    "compact_sdf.cli.extract",
    "compact_sdf.cli.serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="compact-sdf", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"compact-sdf {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside the module
                raise
            continue  # command group not built yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("compact-sdf: interrupted", file=sys.stderr)
        return 130
    except (CompactSDFError, OSError, ValueError) as exc:
        if args.debug:
            raise
        print(f"compact-sdf: error: {exc}", file=sys.stderr)
        return 2
