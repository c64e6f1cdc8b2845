"""Where should Add to Model's code fit start, and how many iterations does it need?

The code fit (``training/code_inversion.fit_row``) starts a new shape's code at a random draw, like
training does, and runs 800 Adam iterations on the frozen decoder. A shape added to a model is
often like one already in it; starting from the model's code that already explains its samples
best (lowest mean |s_g - sdf| on the new shape's generalization points) might need fewer
iterations for the same fit (now the product's default, ``fit_row(from_nearest=True)``). For
each new shape, start (random / nearest) x iterations: the
losses, the band check's share and the fused reconstruction's Chamfer and F@0.01 at N = 128.

    .venv/bin/python research/code_fit_init.py --model out/interactive_preview \\
        --shapes hand cheburashka max_planck knight_small --out out/research/code_fit_init.json

``--early --starts nearest --iterations 800`` runs the product's fit as it is (each phase ends once
``CHECK_EVERY`` iterations improve the probe error by less than ``PLATEAU``), to compare with the
full 800 iterations.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _harness import CACHE, MESHES  # noqa: E402


def main() -> None:
    from compact_sdf.checkpoint import load_model
    from compact_sdf.data import prepare_mesh
    from compact_sdf.data.load import load_mesh
    from compact_sdf.extract import band_check
    from compact_sdf.extract.fusion import extract_shape
    from compact_sdf.metrics import evaluate_meshes
    from compact_sdf.training.code_inversion import fit_row, nearest_code

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--shapes", nargs="+", required=True, help="shared meshes to add")
    p.add_argument("--iterations", type=int, nargs="+", default=[200, 400, 800])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--early", action="store_true", help="each phase ends once it stops improving (the default)"
    )
    p.add_argument("--starts", nargs="+", default=["random", "nearest"])
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    cfg = loaded.config
    rows = []
    for name in args.shapes:
        samples = prepare_mesh(MESHES / f"{name}.ply", cfg=cfg.sampling, cache_dir=CACHE)
        gt = load_mesh(MESHES / f"{name}.ply")
        near = nearest_code(loaded.model, loaded.model.num_shapes, samples)
        for start in args.starts:
            for iterations in args.iterations:
                model = copy.deepcopy(loaded.model)
                model.add_shapes(1, torch.Generator().manual_seed(cfg.train.seed))
                index = model.num_shapes - 1
                t = time.perf_counter()
                nearest = start == "nearest"  # the product's default; "random": the row's own draw
                fit = fit_row(
                    model,
                    index,
                    samples,
                    cfg,
                    iterations=iterations,
                    from_nearest=nearest,
                    until_plateau=args.early,
                )
                seconds = time.perf_counter() - t
                gen_set = band_check.generalization_set(samples, torch.device("cpu"))
                (coverage,) = band_check.band_coverage(model, [gen_set], cfg, [index])
                view = replace(loaded, model=model, memo=type(loaded.memo)())
                mesh = extract_shape(view, model.codes.weight[index].detach(), cfg.extract)
                mesh = mesh.transformed(samples.normalization)
                norm = samples.normalization
                scores = evaluate_meshes(mesh.to_trimesh(), gt, normalization=norm, samples=100_000)
                row = {
                    "shape": name, "start": start, "nearest": loaded.names[near], "iterations": iterations,
                    "seconds": round(seconds, 2), "loss_gen": fit.loss_gen, "loss_ovf": fit.loss_ovf,
                    "ran": fit.iterations,
                    "band_share": coverage.share, "chamfer": scores["chamfer"],
                    "fscore@0.01": scores["fscore@0.01"],
                }  # fmt: skip
                rows.append(row)
                print(row, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": str(args.model), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
