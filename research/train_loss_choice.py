"""MSE or L1 for the branch losses? Train the same model both ways and compare reconstructions.

The paper states MSE, the release uses L1 (method.md section 4). Both runs share everything
else (preset, seed, steps, meshes); each trained model is meshed with the fused extraction and
scored with Chamfer distance and F-score against the ground truth (``compact_sdf.evaluate``).

    python bench/train_loss_choice.py --preset preview --steps 300 knight_small.ply spot.ply
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from compact_sdf.checkpoint import load_model
from compact_sdf.config import get_preset
from compact_sdf.data import prepare_mesh
from compact_sdf.data.load import load_mesh
from compact_sdf.evaluate import evaluate_shape
from compact_sdf.training.train import train


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("meshes", nargs="+")
    ap.add_argument("--preset", default="preview")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--resolution", type=int, default=128, help="marching-cubes cells per side")
    ap.add_argument("--samples", type=int, default=100_000, help="surface samples per side for the metrics")
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: torch's default)")
    ap.add_argument("--cache", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base = get_preset(args.preset).override({"train.steps": args.steps, "train.device": "cpu"})
    shapes = [prepare_mesh(m, cfg=base.sampling, cache_dir=args.cache) for m in args.meshes]
    gts = {s.name: load_mesh(m) for s, m in zip(shapes, args.meshes, strict=True)}
    rows = []
    for loss in ("mse", "l1"):
        cfg = base.override({"train.loss": loss})
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            train(Path(tmp) / "m", shapes, cfg)
            seconds = time.perf_counter() - t0
            loaded = load_model(Path(tmp) / "m")
            ex = replace(cfg.extract, resolution=args.resolution)
            for name, gt in gts.items():
                m, _ = evaluate_shape(loaded, name, gt, ex, "fused", samples=args.samples)
                rows.append({"loss": loss, "shape": name, "train_s": seconds, **m})
                print(
                    f"{loss} {name}: CD {m['chamfer']:.3e} F@0.005 {m['fscore@0.005']:.3f}", file=sys.stderr
                )
    print(
        f"preset {args.preset}, {args.steps} steps, fused extraction at {args.resolution}, "
        f"{args.samples} samples"
    )
    print("| loss | shape | Chamfer (area-uniform) | F@0.005 | F@0.01 | train s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['loss']} | {r['shape']} | {r['chamfer']:.3e} | {r['fscore@0.005']:.3f} | "
            f"{r['fscore@0.01']:.3f} | {r['train_s']:.0f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
