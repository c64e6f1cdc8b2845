"""``evaluate`` and ``ablate``: score a trained shape's reconstruction against its ground truth."""

from __future__ import annotations

import argparse

from compact_sdf import tasks
from compact_sdf.cli.options import (
    Sub,
    extract_args,
    extraction,
    mode_arg,
    model_args,
    progress,
    samples_arg,
    write_json,
)


def register(subparsers: Sub) -> None:
    p = subparsers.add_parser("evaluate", help="score a reconstruction against its ground-truth mesh")
    model_args(p, tasks.EvaluateRequest)
    p.add_argument("--shape", required=True)
    p.add_argument("--mesh", required=True, help="ground-truth mesh")
    mode_arg(p, tasks.EvaluateRequest)
    samples_arg(p, tasks.EvaluateRequest)
    p.add_argument("--json", default=None, help="write the metrics here too")
    p.add_argument("--save-mesh", default=None, help="also write the reconstruction")
    extract_args(p, tasks.EvaluateRequest)
    p.set_defaults(func=run_evaluate, request=evaluate_request)

    p = subparsers.add_parser("ablate", help="both branches, paper fusion n=3, distance fusion on one shape")
    model_args(p, tasks.AblateRequest)
    p.add_argument("--shape", required=True)
    p.add_argument("--mesh", required=True, help="ground-truth mesh")
    samples_arg(p, tasks.AblateRequest)
    p.add_argument("--json", required=True)
    extract_args(p, tasks.AblateRequest)
    p.set_defaults(func=run_ablate, request=ablate_request)


def evaluate_request(args: argparse.Namespace) -> tasks.EvaluateRequest:
    fields = {"mode": args.mode, "samples": args.samples, **extraction(args)}
    return tasks.EvaluateRequest(args.model_dir, args.shape, args.mesh, **fields)


def ablate_request(args: argparse.Namespace) -> tasks.AblateRequest:
    fields = {"samples": args.samples, **extraction(args)}
    return tasks.AblateRequest(args.model_dir, args.shape, args.mesh, **fields)


def run_evaluate(args: argparse.Namespace) -> int:
    from compact_sdf.extract.mesh import save_mesh

    metrics, mesh = tasks.evaluate(evaluate_request(args))
    if args.save_mesh:
        save_mesh(mesh, args.save_mesh)
    write_json(metrics, args.json)
    return 0


def run_ablate(args: argparse.Namespace) -> int:
    write_json(tasks.ablate(ablate_request(args), progress=progress), args.json)
    return 0
