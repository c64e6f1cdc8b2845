"""Training throughput and peak memory per preset, ours against the release-style configuration.

For each preset two configurations run through the real training loop (``compact_sdf.training.train``):
  ours     sparse grid rows + lazy Adam (SparseAdam) for the grid; bf16 autocast on CUDA, fp32 on CPU
  release  dense Adam over every grid value, fp32 (what the authors' code does)
Each configuration runs in its own subprocess so its peak memory is its own (CUDA:
``torch.cuda.max_memory_allocated``; CPU: peak RSS of the process). Samples are synthetic
(sphere SDFs) so the timing covers the step only, not mesh preparation. samples/s counts sample
points through one branch: shapes x samples_per_shape x 2 branches per step.

    python bench/train_throughput.py                 # all presets, markdown table
    python bench/train_throughput.py --json out.json # also write the rows as JSON
    python bench/train_throughput.py --presets tiny preview --steps 20 --threads 1
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _harness import machine, write_results
from compact_sdf.config import PRESETS, get_preset
from compact_sdf.data.normalize import Normalization
from compact_sdf.data.samples import ShapeSamples

# The paper preset (15 shapes x 50k samples per branch) is a GPU workload; on a CPU it runs with a
# reduced batch so a step takes seconds, not minutes. The table says when this applied.
CPU_PAPER_BATCH = {"train.shapes_per_batch": 2, "train.samples_per_shape": 4096}
POINTS_PER_SET = 200_000


def synthetic_shapes(count: int, seed: int = 0) -> list[ShapeSamples]:
    """Spheres of different radii: uniform points with exact signed distances."""
    rng = np.random.default_rng(seed)
    shapes = []
    for k in range(count):
        r = 0.3 + 0.5 * k / max(1, count - 1)
        pts = rng.uniform(-1, 1, (POINTS_PER_SET, 3)).astype(np.float32)
        sdf = (np.linalg.norm(pts, axis=1) - r).astype(np.float32)
        shapes.append(
            ShapeSamples(
                f"sphere{k}", f"synthetic{k}", Normalization((0.0, 0.0, 0.0), 1.0), pts, sdf, pts, sdf
            )
        )
    return shapes


def run_one(preset: str, variant: str, steps: int, warmup: int, device: str) -> dict[str, Any]:
    """One configuration in this process; returns its throughput row."""
    from compact_sdf.training.train import TrainProgress, train

    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    over: dict[str, Any] = {
        "train.steps": warmup + steps,
        "train.checkpoint_every": 10**9,
        "train.log_every": 10**9,
    }
    over["train.device"] = "cuda" if cuda else "cpu"
    reduced = preset == "paper" and not cuda
    if reduced:
        over.update(CPU_PAPER_BATCH)
    if variant == "release":
        over.update({"train.sparse_grid": False, "train.precision": "fp32"})
    else:
        over.update({"train.sparse_grid": True, "train.precision": "bf16" if cuda else "fp32"})
    cfg = get_preset(preset).override(over)
    tc = cfg.train
    shapes = synthetic_shapes(tc.shapes_per_batch)
    stamps: list[float] = []

    def tick(p: TrainProgress) -> None:
        if cuda:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp:
        train(Path(tmp) / "model", shapes, cfg, progress=tick)
    timed = stamps[warmup - 1 :] if warmup > 0 else stamps
    seconds = (timed[-1] - timed[0]) / max(1, len(timed) - 1)
    per_step = tc.shapes_per_batch * tc.samples_per_shape * 2
    m = cfg.model
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    )
    return {
        "preset": preset,
        "variant": variant,
        "device": torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "grid": f"{m.grid_res}^3 x {m.grid_channels}",
        "mlp": f"{m.layers} x {m.hidden}",
        "code_dim": m.code_dim,
        "shapes_per_step": tc.shapes_per_batch,
        "samples_per_shape": tc.samples_per_shape,
        "reduced_batch": reduced,
        "precision": tc.precision if cuda else "fp32",
        "sparse_grid": tc.sparse_grid,
        "step_s": seconds,
        "samples_per_s": per_step / seconds,
        "peak_mem_mib": peak,
        "timed_steps": len(timed) - 1,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    ap.add_argument("--variants", nargs="+", default=["ours", "release"], choices=["ours", "release"])
    ap.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: torch's default)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    ap.add_argument("--one", nargs=2, metavar=("PRESET", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps(run_one(args.one[0], args.one[1], args.steps, args.warmup, args.device)))
        return 0

    rows = []
    for preset in args.presets:
        for variant in args.variants:
            cmd = [sys.executable, __file__, "--one", preset, variant, "--steps", str(args.steps)]
            cmd += ["--warmup", str(args.warmup), "--device", args.device, "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{preset}/{variant} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                return 1
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"done {preset}/{variant}: {rows[-1]['samples_per_s']:.0f} samples/s", file=sys.stderr)
    print(f"machine: {machine()}")
    head = "| preset | variant | grid | MLP | z | shapes x samples/step | precision | step s | samples/s |"
    print(head + " peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        batch = f"{r['shapes_per_step']} x {r['samples_per_shape']}" + (
            " (reduced)" if r["reduced_batch"] else ""
        )
        print(
            f"| {r['preset']} | {r['variant']} | {r['grid']} | {r['mlp']} | {r['code_dim']} | {batch} | "
            f"{r['precision']} | {r['step_s']:.3f} | {r['samples_per_s']:.0f} | {r['peak_mem_mib']:.0f} |"
        )
    by = {(r["preset"], r["variant"]): r for r in rows}
    for preset in args.presets:
        if (preset, "ours") in by and (preset, "release") in by:
            gain = by[(preset, "ours")]["samples_per_s"] / by[(preset, "release")]["samples_per_s"]
            print(f"{preset}: ours / release-style = {gain:.2f}x")
    if args.json:
        write_results(Path(args.json), {"rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
