"""The ``compact-sdf`` command line: one sub-module per command group, one dispatcher.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers)`` which adds its
sub-commands and sets ``func`` (a callable taking the parsed args and returning an
exit code). User errors print one line and exit non-zero; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from compact_sdf import __version__
from compact_sdf.config import PRESETS
from compact_sdf.errors import CompactSDFError
from compact_sdf.progress import Progress

COMMAND_MODULES = (
    "compact_sdf.cli.prepare",
    "compact_sdf.cli.train",
    "compact_sdf.cli.extract",
    "compact_sdf.cli.interpolate",
    "compact_sdf.cli.codes",
    "compact_sdf.cli.fit",
    "compact_sdf.cli.evaluate",
    "compact_sdf.cli.serve",
    "compact_sdf.cli.collection",
)


def add_override_option(parser: argparse.ArgumentParser, section: str = "SECTION") -> None:
    """``--set section.key=value`` (repeatable): the one way every command overrides a setting."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar=f"{section}.KEY=VALUE",
        help="override a setting (repeatable), e.g. --set model.hidden=256",
    )


def add_open_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-open",
        action="store_true",
        help="accept non-watertight meshes (inside/outside from the generalised winding number)",
    )


def add_sampling_options(parser: argparse.ArgumentParser, default_preset: str) -> None:
    """``--preset``, ``--set``, ``--allow-open`` and ``--cache``: what building training samples takes."""
    parser.add_argument("--preset", default=None, help=f"{', '.join(PRESETS)} (default {default_preset})")
    add_override_option(parser)
    add_open_option(parser)
    parser.add_argument(
        "--cache",
        default=None,
        help="sample cache folder (default $COMPACT_SDF_CACHE or ~/.cache/compact_sdf)",
    )


def stage_bar(enabled: bool, prefix: str = "") -> tuple[Progress | None, Callable[[], None]]:
    """A (stage, fraction) callback drawn as one percentage bar on stderr, and its closer.

    The bar opens on the first call, so work that reports nothing (cached samples) prints nothing;
    each stage refills it under its own label.
    """
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bars: list[tqdm] = []

    def update(stage: str, fraction: float) -> None:
        if not bars:
            fmt = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}"
            bars.append(tqdm(total=100, file=sys.stderr, bar_format=fmt))
        bar = bars[0]
        bar.set_description_str(f"{prefix}{stage}", refresh=False)
        bar.n = round(100 * min(max(fraction, 0.0), 1.0))
        bar.refresh()

    def close() -> None:
        if bars:
            bars[0].close()

    return update, close


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="compact-sdf", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"compact-sdf {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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
