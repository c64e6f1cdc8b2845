"""``compact-sdf prepare``: validate meshes and write their training sets, with a report.

Each mesh's validation report and sample counts are printed; the sets are written to
``--out/<name>.samples.npz`` in the cache format (``compact_sdf.data.cache.load_samples`` reads
them) and also kept in the sample cache so training does not prepare them again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from compact_sdf.cli import add_sampling_options, stage_bar
from compact_sdf.errors import InputError
from compact_sdf.tasks import PrepareRequest, default_of, overrides_from, prepare

if TYPE_CHECKING:  # heavy imports stay out of the parser that every command builds
    from compact_sdf.data.samples import ShapeSamples


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "prepare",
        help="validate meshes and build their training samples",
        description="Validate meshes and write their sampled training sets (exact signed distances).",
    )
    p.add_argument("meshes", nargs="+", metavar="MESH", help="mesh files (.obj .ply .stl .off .glb .gltf)")
    p.add_argument("--out", required=True, help="folder for <name>.samples.npz")
    add_sampling_options(p, default_of(PrepareRequest, "preset"))
    p.add_argument("--name", default=None, help="shape name (one mesh only; default: the file's stem)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_prepare, request=to_requests)


def to_requests(args: argparse.Namespace) -> list[PrepareRequest]:
    """One request per mesh on the command line."""
    if args.name and len(args.meshes) > 1:
        raise InputError("--name needs exactly one mesh")
    overrides = overrides_from(list(args.overrides))
    return [
        PrepareRequest(
            mesh=m,
            name=args.name or Path(m).stem,
            preset=args.preset or default_of(PrepareRequest, "preset"),
            overrides=overrides,
            allow_open=args.allow_open,
            cache_dir=args.cache,
        )
        for m in args.meshes
    ]


def run_prepare(args: argparse.Namespace) -> int:
    from compact_sdf.data.cache import SUFFIX, save_samples
    from compact_sdf.data.load import load_mesh
    from compact_sdf.data.validate import validate_mesh

    requests = to_requests(args)
    names = [r.name for r in requests]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(
            f"several meshes would be named {', '.join(duplicates)}; prepare them separately with --name"
        )
    meshes = [load_mesh(r.mesh) for r in requests]  # fail on an unreadable file before any long work
    reports = [
        validate_mesh(mesh, r.config().sampling, r.name) for mesh, r in zip(meshes, requests, strict=True)
    ]
    for report in reports:
        print(report.format())
    refused = [r.name for r in reports if not r.ok]
    if refused:
        raise InputError(f"refused: {', '.join(refused)} (see the report above)")
    out = Path(args.out)
    for req in requests:
        started = time.perf_counter()
        samples = _prepare_one(req, args.no_progress)
        path = save_samples(samples, out / f"{req.name}{SUFFIX}")
        print(
            f"{req.name}: {len(samples.ovf_sdf):,} overfitting samples, {len(samples.gen_sdf):,} "
            f"generalization samples -> {path} ({time.perf_counter() - started:.1f} s)"
        )
    return 0


def _prepare_one(req: PrepareRequest, quiet: bool) -> ShapeSamples:
    progress, close = stage_bar(not quiet, f"{req.name}: ")
    try:
        return prepare(req, progress)
    finally:
        close()
