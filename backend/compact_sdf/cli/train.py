"""``compact-sdf train`` and ``compact-sdf plot-loss``.

``train`` prepares (or loads from the cache) the samples of every mesh, then runs the training
loop with a progress bar. ``--steps`` is the total, so ``--resume --steps 300`` after 200 steps
runs 100 more. On resume the settings come from the checkpoint (``--set`` still overrides), and
meshes the checkpoint knows need not be named again: they are re-read from their recorded paths.
The first Ctrl-C stops at the next step boundary and saves a checkpoint; a second one aborts.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compact_sdf.cli import add_sampling_options, stage_bar
from compact_sdf.errors import InputError
from compact_sdf.tasks import TrainRequest, checkpoint_config, default_of, overrides_from, train


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "train",
        help="train one model on one or more meshes",
        description="Train the dual-branch model on meshes; --steps is the total step count.",
    )
    p.add_argument("meshes", nargs="*", metavar="MESH", help="mesh files (.ply .obj .stl .off .glb ...)")
    p.add_argument("--out", required=True, help="model directory (checkpoint.pt, model.json, log.csv)")
    add_sampling_options(p, default_of(TrainRequest, "preset"))
    p.add_argument("--steps", type=int, default=None, help="total training steps (default: the preset's)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    p.add_argument(
        "--collection",
        action=argparse.BooleanOptionalAction,
        default=default_of(TrainRequest, "collection"),
        help="more meshes than the preset's batch: 15 shapes per step at the preset's step cost, "
        "steps growing linearly with the shapes, a wider grid (compact_sdf/training/scale.py, "
        "docs/benchmarks/collection.md); --no-collection keeps the preset as it is",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train, request=to_request)

    q = subparsers.add_parser("plot-loss", help="write a PNG of a model's training loss curves")
    q.add_argument("model_dir", metavar="MODEL_DIR")
    q.add_argument("--out", default=None, help="PNG path (default MODEL_DIR/loss.png)")
    q.set_defaults(func=run_plot)


def to_request(args: argparse.Namespace) -> TrainRequest:
    """The parsed command line as a request (fields it does not set keep the request's defaults)."""
    if args.resume and args.preset is not None:
        trained = checkpoint_config(args.out).preset
        if args.preset != trained:
            raise InputError(f"the checkpoint was trained with preset '{trained}', not '{args.preset}'")
    return TrainRequest(
        model_dir=args.out,
        meshes=tuple(args.meshes),
        preset=args.preset or default_of(TrainRequest, "preset"),
        steps=args.steps,
        overrides=overrides_from(list(args.overrides)),
        allow_open=args.allow_open,
        resume=args.resume,
        cache_dir=args.cache,
        collection=args.collection,
    )


class _StopFlag:
    """First SIGINT asks the loop to stop at the next step; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\ncompact-sdf: stopping after this step (Ctrl-C again to abort)", file=sys.stderr)


def _progress_bar(enabled: bool) -> tuple[Callable[[Any], None] | None, Callable[[], None]]:
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(p: Any) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=p.total_steps, initial=p.step - 1, unit="step", file=sys.stderr)
        b = bar["bar"]
        b.update(p.step - b.n)
        b.set_postfix(gen=f"{p.loss_gen:.2e}", ovf=f"{p.loss_ovf:.2e}", pts_s=f"{p.samples_per_s:.3g}")

    return update, lambda: bar["bar"].close() if "bar" in bar else None


def run_train(args: argparse.Namespace) -> int:
    req = to_request(args)
    stop = _StopFlag()
    previous = signal.signal(signal.SIGINT, stop.handle)
    stages, close_stages = stage_bar(not args.no_progress)
    update, close = _progress_bar(not args.no_progress)
    try:
        result = train(req, progress=stages, on_step=update, should_stop=stop)
    finally:
        close_stages()
        close()
        signal.signal(signal.SIGINT, previous)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun only rank 0 reports
    state = "stopped" if result.cancelled else "trained"
    print(
        f"{state} {result.shapes} shape(s) to step {result.step}/{result.total_steps} "
        f"in {result.elapsed_s:.1f} s; "
        f"loss gen {result.loss_gen:.3g} ovf {result.loss_ovf:.3g}; model in {result.model_dir}"
    )
    if result.rollbacks:
        print(f"the loss diverged {result.rollbacks} time(s); training went back to a checkpoint each time")
    if result.band_advice:
        print(f"warning: {result.band_advice}")
    if result.check_worse:
        worse = ", ".join(f"{n} ({lo:.3g} -> {last:.3g})" for n, (lo, last) in result.check_worse.items())
        print(
            f"warning: the held-out check of {worse} got worse with more training; "
            f"{result.model_dir / 'best.pt'} keeps the state with the lowest mean check "
            f"(step {result.best_step})"
        )
    if result.cancelled:
        print(f"resume with: compact-sdf train --resume --out {result.model_dir}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from compact_sdf.training.losslog import plot_losses

    out = Path(args.out) if args.out else Path(args.model_dir) / "loss.png"
    print(plot_losses(Path(args.model_dir), out))
    return 0
