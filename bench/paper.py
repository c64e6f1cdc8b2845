"""The paper's settings, measured side by side with the release-style configuration.

One command per setting, made for a GPU (H100/H200 class) and runnable on a CPU with ``--quick``:

    # one complex shape, paper preset, ours and release-style in the same run
    python bench/paper.py single --mesh ../shared/meshes/max_planck.ply --out bench/results/single
    # a collection of shapes sharing one model
    python bench/paper.py collection --out bench/results/collection

Each run trains ours (sparse grid Adam) and the release-style configuration (dense Adam over the
whole grid), both at the chosen precision (the comparison is of the method alone), from the same
prepared samples and seed, evaluates along the way (fidelity against training time), then reports
CD, F, P, R at tau 0.005 and 0.01 and normal consistency at marching-cubes resolutions 256 and 512
(our 1M-sample protocol and the release's GT-vertex protocol), samples/s, peak GPU memory,
extraction time at N=512 for ours against the release-style dense extraction, and a roofline
estimate. It writes ``results.json``, loss and fidelity-vs-time plots and a render into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import write_results
from compact_sdf.checkpoint import load_model
from compact_sdf.config import Config, ExtractConfig, get_preset
from compact_sdf.data import prepare_mesh
from compact_sdf.data.load import load_mesh
from compact_sdf.extract.fusion import extract_shape
from compact_sdf.metrics import evaluate_meshes
from compact_sdf.training.train import train
from extract import release_style
from roofline import roofline

SHARED = Path(__file__).resolve().parents[2] / "shared" / "meshes"
COLLECTION = ["bunny", "spot", "cow", "max_planck", "cheburashka", "fandisk", "featuretype", "knight_small"]

# method.md section 7: one complex shape (Stanford models) and the ShapeNet average.
PAPER_SINGLE = {"chamfer": 6.56e-5, "fscore": 0.983, "precision": 0.969, "recall": 0.998}
PAPER_COLLECTION_CD_AVG = 0.607e-4


@dataclass(frozen=True)
class Variant:
    label: str
    sparse_grid: bool
    precision: str


def variants(precision: str) -> list[Variant]:
    return [Variant("ours", True, precision), Variant("release_style", False, precision)]


def peak_memory(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def evaluate(model_dir: Path, meshes: dict[str, trimesh.Trimesh], resolution: int, samples: int) -> dict:
    """Fused reconstruction of every shape at ``resolution`` against its ground truth."""
    loaded = load_model(model_dir, "cuda" if torch.cuda.is_available() else "cpu")
    out: dict[str, Any] = {}
    for name, gt in meshes.items():
        t0 = time.perf_counter()
        rec = extract_shape(loaded, name, ExtractConfig(resolution=resolution))
        seconds = time.perf_counter() - t0
        pred = trimesh.Trimesh(rec.vertices, rec.faces, process=False)
        out[name] = {**evaluate_meshes(pred, gt, samples=samples), "extract_s": seconds}
    return out


def train_with_checkpoints(
    model_dir: Path, shapes: list, cfg: Config, evals: list[int], meshes: dict, samples: int, budget_s: float
) -> dict[str, Any]:
    """Train in chunks (resuming), evaluating at each step of ``evals``; stop early past ``budget_s``."""
    curve: list[dict[str, Any]] = []
    result = None
    for steps in evals:
        result = train(
            model_dir, shapes, replace(cfg, train=replace(cfg.train, steps=steps)), resume=bool(curve)
        )
        scores = evaluate(model_dir, meshes, 256, samples)
        curve.append(
            {
                "step": steps,
                "train_s": train_seconds(model_dir),
                "chamfer": float(np.mean([s["chamfer"] for s in scores.values()])),
                "fscore@0.005": float(np.mean([s["fscore@0.005"] for s in scores.values()])),
            }
        )
        print(f"  step {steps}: {curve[-1]}", flush=True)
        if curve[-1]["train_s"] > budget_s:
            break
    assert result is not None
    return {"curve": curve, "samples_per_s": result.samples_per_s, "steps": result.step}


def train_seconds(model_dir: Path) -> float:
    """Pure training time from the loss log (excludes checkpoint writes and evaluation)."""
    rows = (model_dir / "log.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    return float(rows[-1].split(",")[header.index("elapsed")])


def run(args: argparse.Namespace, names: list[str], cfg: Config) -> dict[str, Any]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [Path(args.mesh)] if args.mesh else [Path(args.meshes_dir) / f"{n}.ply" for n in names]
    meshes = {p.stem: load_mesh(p) for p in paths}
    t0 = time.perf_counter()
    shapes = [prepare_mesh(p, cfg=cfg.sampling, cache_dir=out / "cache") for p in paths]
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "preset": cfg.preset,
        "config": cfg.to_dict(),
        "shapes": list(meshes),
        "prepare_s": time.perf_counter() - t0,
        "paper": PAPER_SINGLE if len(paths) == 1 else {"chamfer_avg_shapenet": PAPER_COLLECTION_CD_AVG},
        "variants": {},
    }
    evals = sorted({int(s) for s in args.evals.split(",")} | {cfg.train.steps})
    evals = [s for s in evals if s <= cfg.train.steps]
    for v in variants(args.precision):
        print(f"== {v.label}: sparse_grid={v.sparse_grid} precision={v.precision}", flush=True)
        model_dir = out / v.label
        shutil.rmtree(model_dir, ignore_errors=True)
        vcfg = replace(cfg, train=replace(cfg.train, sparse_grid=v.sparse_grid, precision=v.precision))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        budget = args.budget_s if v.label == "release_style" else float("inf")
        entry = train_with_checkpoints(model_dir, shapes, vcfg, evals, meshes, args.eval_samples, budget)
        entry["peak_train_memory_gib"] = peak_memory(device)
        report["variants"][v.label] = entry
    ours = out / "ours"
    report["final"] = {str(n): evaluate(ours, meshes, n, args.final_samples) for n in args.resolutions}
    report["extraction"] = compare_extraction(ours, next(iter(meshes)), args.extract_resolution)
    r_ours = report["variants"]["ours"]["samples_per_s"]
    r_rel = report["variants"]["release_style"]["samples_per_s"]
    report["train_speedup"] = r_ours / r_rel
    report["roofline"] = roofline(cfg.model, r_ours, args.precision, device)
    write_results(out / "results.json", report)
    plot(report, out)
    print(json.dumps({k: report[k] for k in ("device", "train_speedup", "extraction")}, indent=2))
    return report


def compare_extraction(model_dir: Path, name: str, resolution: int) -> dict[str, Any]:
    """Our sparse fused extraction against the release-style dense two-pass one, same model."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded = load_model(model_dir, device)
    cfg = ExtractConfig(resolution=resolution)
    t0 = time.perf_counter()
    ours = extract_shape(loaded, name, cfg)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    release = release_style(loaded, name, cfg, device)
    t_rel = time.perf_counter() - t0
    return {
        "resolution": resolution,
        "ours_s": t_ours,
        "release_style_s": t_rel,
        "speedup": t_rel / t_ours,
        "ours_faces": len(ours.faces),
        "release_style_faces": len(release.faces),
    }


def plot(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, entry in report["variants"].items():
        t = [c["train_s"] for c in entry["curve"]]
        axes[0].plot(t, [c["chamfer"] for c in entry["curve"]], "o-", label=label)
        axes[1].plot(t, [c["fscore@0.005"] for c in entry["curve"]], "o-", label=label)
    axes[0].set(xlabel="training time (s)", ylabel="Chamfer (1M samples)", yscale="log")
    axes[1].set(xlabel="training time (s)", ylabel="F-score @ 0.005")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"{report['preset']} preset on {report['device']}")
    fig.tight_layout()
    fig.savefig(out / "fidelity_vs_time.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting", choices=["single", "collection"])
    parser.add_argument("--mesh", help="single: the mesh (default max_planck)")
    parser.add_argument("--meshes-dir", default=str(SHARED), help="where the shared meshes are")
    parser.add_argument("--out", required=True)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--precision", choices=["fp32", "tf32", "bf16"], help="both (default: bf16 on CUDA)")
    parser.add_argument("--evals", default="250,500,1000,2000", help="steps at which to evaluate")
    parser.add_argument("--budget-s", type=float, default=600.0, help="release-style training time cap")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--extract-resolution", type=int, default=512)
    parser.add_argument("--eval-samples", type=int, default=300_000)
    parser.add_argument("--final-samples", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="CPU smoke run: preview preset, few steps")
    args = parser.parse_args()
    args.precision = args.precision or ("bf16" if torch.cuda.is_available() else "fp32")
    cfg = get_preset(args.preset)
    if args.setting == "single":
        args.mesh = args.mesh or str(Path(args.meshes_dir) / "max_planck.ply")
        cfg = cfg.override({"train.shapes_per_batch": 1, "train.samples_per_shape": 100_000})
    if args.quick:
        cfg = get_preset("preview").override({"train.steps": 20, "train.samples_per_shape": 2000})
        args.evals, args.resolutions, args.extract_resolution = "10", [64], 64
        args.eval_samples = args.final_samples = 20_000
        if args.setting == "collection":
            COLLECTION[:] = ["knight_small", "spot"]
    cfg = cfg.override(args.set)
    run(args, COLLECTION, cfg)


if __name__ == "__main__":
    main()
