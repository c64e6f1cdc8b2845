"""``compact-sdf collection``: write the reproducible shape collection, optionally prepare it.

The procedural families (fixed seed) and the watertight meshes of ``--extra`` go to
``--out/<name>.ply`` with a ``collection.json`` manifest. ``--prepare`` also builds every shape's
training set over ``--jobs`` worker processes (one per core by default) into the sample cache,
with one progress bar, so ``compact-sdf train --out M DIR/*.ply`` then starts at once.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from compact_sdf.cli import add_override_option
from compact_sdf.config import DEFAULT_PRESET


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "collection",
        help="write the procedural shape collection (and prepare its samples)",
        description="Write procedural shape families (fixed seeds) plus a folder's watertight meshes.",
    )
    p.add_argument("--out", required=True, help="folder for <name>.ply and collection.json")
    p.add_argument("--per-family", type=int, default=8, help="members of each family (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--extra", default=None, help="folder whose watertight .ply meshes join the collection")
    p.add_argument("--limit", type=int, default=None, help="keep the first N shapes (families interleaved)")
    p.add_argument("--prepare", action="store_true", help="also build every shape's training samples")
    p.add_argument(
        "--preset", default=DEFAULT_PRESET, help="sampling settings of this preset (with --prepare)"
    )
    add_override_option(p)
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--cache", default=None, help="sample cache folder (default $COMPACT_SDF_CACHE)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_collection)


def run_collection(args: argparse.Namespace) -> int:
    from compact_sdf.config import get_preset
    from compact_sdf.data.collection import build_collection, write_collection

    started = time.perf_counter()
    shapes = build_collection(args.per_family, args.seed, args.extra, args.limit)
    manifest = write_collection(shapes, args.out, args.seed)
    families = sorted({s.family for s in shapes})
    print(
        f"{len(shapes)} shapes ({', '.join(families)}) -> {manifest} ({time.perf_counter() - started:.1f} s)"
    )
    if not args.prepare:
        return 0
    from compact_sdf.data.parallel import prepare_many

    cfg = get_preset(args.preset).override(list(args.overrides))
    paths = [Path(args.out) / f"{s.name}.ply" for s in shapes]
    started = time.perf_counter()
    prepare_many(paths, cfg.sampling, args.cache, jobs=args.jobs, progress=not args.no_progress)
    print(f"prepared {len(paths)} shapes in {time.perf_counter() - started:.1f} s")
    return 0
