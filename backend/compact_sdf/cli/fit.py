"""``fit``: add a new mesh to a trained model (Add to Model), by its code and, where needed, a fine-tune."""

from __future__ import annotations

import argparse

from compact_sdf import tasks
from compact_sdf.cli.options import Sub, model_args, progress
from compact_sdf.tasks import default_of
from compact_sdf.training.add_shape import MODES as FIT_MODES


def register(subparsers: Sub) -> None:
    p = subparsers.add_parser("fit", help="add a new mesh to a trained model")
    model_args(p, tasks.FitRequest)
    p.add_argument("mesh", metavar="MESH", help="the new mesh file")
    p.add_argument("--name", default=None, help="shape name (default: the file stem)")
    mode = default_of(tasks.FitRequest, "mode")
    p.add_argument(
        "--mode",
        choices=FIT_MODES,
        default=mode,
        help="code: fit the code only (decoder frozen); full: continue training the whole model; auto: the "
        f"code, then full where the fusion band does not hold the shape (default {mode})",
    )
    p.add_argument("--full", action="store_const", const="full", dest="mode", help="the same as --mode full")
    iterations = default_of(tasks.FitRequest, "iterations")
    p.add_argument(
        "--iterations", type=int, default=iterations, help=f"code-fit iterations (default {iterations})"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps of the fine-tune (full, or auto when it fine-tunes; default: the preset's)",
    )
    p.add_argument("--cache", default=None, help="sample cache directory")
    p.set_defaults(func=run_fit, request=fit_request)


def fit_request(args: argparse.Namespace) -> tasks.FitRequest:
    return tasks.FitRequest(
        args.model_dir,
        args.mesh,
        name=args.name,
        mode=args.mode,
        iterations=args.iterations,
        extra_steps=args.steps,
        cache_dir=args.cache,
        device=args.device,
    )


def run_fit(args: argparse.Namespace) -> int:
    result = tasks.fit(fit_request(args), progress=progress)
    print(
        f"added '{result.name}' ({result.mode} fit, {result.iterations} "
        f"{'iterations' if result.mode == 'code' else 'training steps'}, "
        f"loss gen {result.loss_gen:.3g} ovf {result.loss_ovf:.3g}, {result.elapsed_s:.1f} s)"
    )
    if result.code_misses:
        held = ", ".join(f"{n} {100 * v:.1f}%" for n, v in result.code_misses.items())
        print(
            f"the code fit held too little of the shape inside the fusion band ({held}): fine-tuned the model"
        )
    if result.band_advice:
        print(f"warning: {result.band_advice}")
    return 0
