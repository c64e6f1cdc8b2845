"""``interpolate``: meshes between shapes of a trained model, by blending their codes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compact_sdf import tasks
from compact_sdf.cli.options import Sub, extract_args, extraction, model_args, progress
from compact_sdf.errors import InputError
from compact_sdf.extract.mesh import MESH_SUFFIXES
from compact_sdf.tasks import default_of


def register(subparsers: Sub) -> None:
    p = subparsers.add_parser("interpolate", help="meshes between shapes by blending their codes")
    model_args(p, tasks.InterpolateRequest)
    p.add_argument("--from", dest="start", help="first shape")
    p.add_argument("--to", dest="end", help="last shape")
    p.add_argument("--shapes", nargs="+", default=None, help="two or more shapes, visited in order")
    p.add_argument(
        "--steps",
        type=int,
        default=default_of(tasks.InterpolateRequest, "steps"),
        help="meshes along the path, ends included",
    )
    p.add_argument(
        "--weights", default=None, help="explicit weights, steps separated by ';': '0.2,0.8;0.5,0.5'"
    )
    p.add_argument(
        "--mode", choices=("linear", "slerp"), default=default_of(tasks.InterpolateRequest, "mode")
    )
    p.add_argument(
        "--join-gap",
        type=float,
        default=default_of(tasks.InterpolateRequest, "join_gap"),
        help="join in-between parts the model brings this close (normalised units; 0: off)",
    )
    p.add_argument(
        "--format",
        choices=[s[1:] for s in MESH_SUFFIXES],
        default=default_of(tasks.InterpolateRequest, "format"),
    )
    p.add_argument("--out", required=True, help="output directory (one mesh per step)")
    extract_args(p, tasks.InterpolateRequest)
    p.set_defaults(func=run_interpolate, request=interpolate_request)


def interpolate_request(args: argparse.Namespace) -> tasks.InterpolateRequest:
    if args.shapes and (args.start or args.end):
        raise InputError("give either --from/--to or --shapes, not both")
    names = args.shapes or [n for n in (args.start, args.end) if n]
    return tasks.InterpolateRequest(
        args.model_dir,
        tuple(names),
        steps=args.steps,
        weights=_parse_weights(args.weights) if args.weights else None,
        mode=args.mode,
        join_gap=args.join_gap,
        format=args.format,
        **extraction(args),
    )


def _parse_weights(text: str) -> tuple[tuple[float, ...], ...]:
    try:
        return tuple(tuple(float(v) for v in step.split(",")) for step in text.split(";") if step.strip())
    except ValueError:
        raise InputError(f"--weights must look like '0.2,0.8;0.5,0.5', got '{text}'") from None


def run_interpolate(args: argparse.Namespace) -> int:
    from compact_sdf.extract.mesh import save_mesh

    req = interpolate_request(args)
    steps = tasks.interpolate(req, progress=progress)
    out = Path(args.out)
    for i, step in enumerate(steps):
        name = f"step_{i:03d}.{req.format}"
        save_mesh(step.mesh, out / name)
        for note in step.lost:
            print(f"warning: {name}: {note}", file=sys.stderr)
    print(f"{len(steps)} meshes in {out}")
    return 0
