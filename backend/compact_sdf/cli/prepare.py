"""``compact-sdf prepare``: validate meshes and write their training sets, with a report.

Each mesh's validation report and sample counts are printed; the sets are written to
``--out/<name>.samples.npz`` in the cache format (``compact_sdf.data.cache.load_samples`` reads
them) and also kept in the sample cache so training does not prepare them again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from compact_sdf.cli import add_open_option, add_override_option
from compact_sdf.config import SamplingConfig, get_preset
from compact_sdf.errors import InputError
from compact_sdf.progress import Progress

if TYPE_CHECKING:  # heavy imports stay out of the parser that every command builds
    import trimesh
    from tqdm import tqdm

    from compact_sdf.data.samples import ShapeSamples

DEFAULT_PRESET = "preview"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "prepare",
        help="validate meshes and build their training samples",
        description="Validate meshes and write their sampled training sets (exact signed distances).",
    )
    p.add_argument("meshes", nargs="+", metavar="MESH", help="mesh files (.obj .ply .stl .off .glb .gltf)")
    p.add_argument("--out", required=True, help="folder for <name>.samples.npz")
    p.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        help=f"tiny, preview, balanced or paper (default {DEFAULT_PRESET})",
    )
    add_override_option(p)
    add_open_option(p)
    p.add_argument("--name", default=None, help="shape name (one mesh only; default: the file's stem)")
    p.add_argument(
        "--cache",
        default=None,
        help="sample cache folder (default $COMPACT_SDF_CACHE or ~/.cache/compact_sdf)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    from compact_sdf.data.cache import SUFFIX, save_samples
    from compact_sdf.data.load import load_mesh
    from compact_sdf.data.validate import validate_mesh

    cfg = get_preset(args.preset).override(list(args.overrides))
    if args.allow_open:
        cfg = cfg.override({"sampling.allow_open": True})
    if args.name and len(args.meshes) > 1:
        raise InputError("--name needs exactly one mesh")
    names = [args.name or Path(m).stem for m in args.meshes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(
            f"several meshes would be named {', '.join(duplicates)}; prepare them separately with --name"
        )
    meshes = [load_mesh(m) for m in args.meshes]  # fail on an unreadable file before any long work
    reports = [validate_mesh(mesh, cfg.sampling, name) for mesh, name in zip(meshes, names, strict=True)]
    for report in reports:
        print(report.format())
    refused = [r.name for r in reports if not r.ok]
    if refused:
        raise InputError(f"refused: {', '.join(refused)} (see the report above)")
    out = Path(args.out)
    for mesh, name in zip(meshes, names, strict=True):
        started = time.perf_counter()
        samples = _prepare_one(mesh, name, cfg.sampling, args.cache, args.no_progress)
        path = save_samples(samples, out / f"{name}{SUFFIX}")
        print(
            f"{name}: {len(samples.ovf_sdf):,} overfitting samples, {len(samples.gen_sdf):,} generalization "
            f"samples -> {path} ({time.perf_counter() - started:.1f} s)"
        )
    return 0


def _prepare_one(
    mesh: trimesh.Trimesh, name: str, sampling: SamplingConfig, cache: str | None, quiet: bool
) -> ShapeSamples:
    from compact_sdf.data.cache import load_or_prepare

    if quiet:
        return load_or_prepare(mesh, name, sampling, cache)
    from tqdm import tqdm

    with tqdm(
        total=100, desc=name, file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}"
    ) as bar:
        return load_or_prepare(mesh, name, sampling, cache, _bar_progress(bar, name))


def _bar_progress(bar: tqdm, name: str) -> Progress:
    """Map (stage, fraction) callbacks onto one bar: each stage refills the bar under its own label."""

    def update(stage: str, fraction: float) -> None:
        bar.set_description_str(f"{name}: {stage}", refresh=False)
        bar.n = round(100 * fraction)
        bar.refresh()

    return update
