"""The collection benchmark's shared parts: the shapes, their samples, the scaled config, the scores.

Both ``collection.py`` (training runs) and ``collection_report.py`` (what reads their models) use
them, so neither imports the other.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from _harness import CACHE, MESHES, load, normalization, open_model, peak_mb


def collection(n: int, root: Path) -> list[Path]:
    """The first ``n`` shapes of the reproducible collection, written as PLY files under ``root``."""
    from compact_sdf.data.collection import build_collection, write_collection

    shapes = build_collection(per_family=8, seed=0, extra=MESHES if MESHES.is_dir() else None, limit=n)
    if len(shapes) < n:
        raise SystemExit(f"the collection has {len(shapes)} shapes, fewer than {n}")
    write_collection(shapes, root / "meshes")
    return [root / "meshes" / f"{s.name}.ply" for s in shapes]


def samples(paths: list[Path], cfg: Any) -> list[Any]:
    """Training samples of ``paths`` (cached, two processes)."""
    from compact_sdf.data.parallel import prepare_many

    return prepare_many(paths, cfg.sampling, str(CACHE), jobs=2, progress=False)


def config(args: argparse.Namespace, n: int) -> Any:
    """The preset scaled to ``n`` shapes by the product's rule, with the run's overrides."""
    from compact_sdf.config import get_preset
    from compact_sdf.training.scale import for_collection

    cfg = for_collection(get_preset(args.preset), n).override(list(args.overrides))
    return cfg.override({"train.device": "cpu", "extract.resolution": args.resolution})


def score(mesh: Any, gt_path: Path, norm: Any, args: argparse.Namespace) -> dict[str, float]:
    """CD, F-scores and normal consistency of ``mesh`` (own frame) against its source mesh."""
    from compact_sdf.data.load import load_mesh
    from compact_sdf.metrics import evaluate_meshes

    out = evaluate_meshes(mesh.to_trimesh(), load_mesh(gt_path), normalization=norm, samples=args.samples)
    keep = ("chamfer", "fscore@0.005", "fscore@0.01", "normal_consistency")
    return {k: float(out[k]) for k in keep}


def score_model(model_dir: Path, paths: list[Path], args: argparse.Namespace) -> dict[str, dict]:
    """``score_loaded`` of the model in ``model_dir``."""
    return score_loaded(open_model(model_dir), paths, args)


def score_loaded(loaded: Any, paths: list[Path], args: argparse.Namespace) -> dict[str, dict]:
    """Fused reconstruction of each named shape of a loaded model, scored against its mesh."""
    from compact_sdf.extract.fusion import extract_shape

    ecfg = replace(loaded.config.extract, resolution=args.resolution)
    out = {}
    for path in paths:
        mesh = extract_shape(loaded, path.stem, ecfg, "fused")
        out[path.stem] = score(mesh, path, normalization(loaded, path.stem), args)
    return out


def train_info(cfg: Any, steps: int, seconds: float, load0: list[float], cpu: float) -> dict[str, Any]:
    """What a training run cost, in the same fields for every method compared."""
    return {
        "config": cfg.to_dict(),
        "rule_steps": cfg.train.steps,
        "steps": steps,
        "train_s": seconds,
        "train_cpu_s": cpu,
        "step_cpu_s": cpu / max(1, steps),
        "peak_train_mb": peak_mb(),
        "load_start": load0,
        "load_end": load(),
    }
