"""``extract``: mesh one shape of a trained model, in the shape's own coordinates."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compact_sdf import tasks
from compact_sdf.cli.options import Sub, extract_args, extraction, mode_arg, model_args, progress
from compact_sdf.extract.mesh import MESH_SUFFIXES

LOST_REMEDY = (
    "Walls and gaps finer than the model's training lattice need a finer one (--preset balanced, or "
    "--set sampling.fine_cells=256 when training) or more --steps; --set extract.handles=close closes "
    "shallow pinholes"
)


def register(subparsers: Sub) -> None:
    p = subparsers.add_parser("extract", help="mesh one shape of a trained model (fused by default)")
    model_args(p, tasks.ExtractRequest)
    p.add_argument("--shape", required=True, help="shape name (the training mesh's file stem)")
    mode_arg(p, tasks.ExtractRequest)
    p.add_argument("--out", required=True, help=f"mesh file ({', '.join(MESH_SUFFIXES)})")
    extract_args(p, tasks.ExtractRequest)
    p.set_defaults(func=run_extract, request=extract_request)


def extract_request(args: argparse.Namespace) -> tasks.ExtractRequest:
    fmt = Path(args.out).suffix[1:].lower()
    return tasks.ExtractRequest(args.model_dir, args.shape, mode=args.mode, format=fmt, **extraction(args))


def run_extract(args: argparse.Namespace) -> int:
    from compact_sdf.extract.mesh import save_mesh

    out = tasks.extract(extract_request(args), progress=progress)
    path = save_mesh(out.mesh, args.out)
    print(f"{path}: {len(out.mesh.vertices)} vertices, {len(out.mesh.faces)} faces")
    if out.lost:
        lost = "; ".join(out.lost)
        print(f"warning: {args.shape} differs from its source: {lost}. {LOST_REMEDY}", file=sys.stderr)
    return 0
