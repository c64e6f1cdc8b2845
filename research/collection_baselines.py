"""Same-budget baselines for the collection benchmark: codes-only and one small model per shape.

They answered whether one dual model beats the obvious alternatives at the same parameter count and
CPU time (it does: see git history of docs/benchmarks/collection.md). Not shipped, not in CI.

    python research/collection_baselines.py codes-only --n 50 --minutes 15
    python research/collection_baselines.py per-shape --n 50 --minutes 15
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _collection import collection, config, samples, score, score_model, train_info  # noqa: E402
from _harness import OUT, cpu_timer, load, machine  # noqa: E402

ROOT = OUT / "collection"


def _clear(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def run_codes_only(args: argparse.Namespace) -> dict[str, Any]:
    from baselines import dual_parameters, train_codes_only
    from compact_sdf.extract.fusion import extract_field

    paths = collection(args.n, ROOT)
    cfg = config(args, args.n)
    shapes = samples(paths, cfg)
    budget = dual_parameters(cfg.model, args.n)
    load0, c0 = load(), time.process_time()
    res = train_codes_only(shapes, cfg, budget, should_stop=cpu_timer(args.minutes * 60))
    info = train_info(cfg, res.steps, res.seconds, load0, time.process_time() - c0) | {
        "parameters": res.parameters,
        "budget": budget,
    }
    info["hidden"] = res.model.mlp.out.in_features
    res.model.eval()
    metrics = {}
    for i, (path, s) in enumerate(zip(paths, shapes, strict=True)):
        if i % args.eval_every:
            continue  # its big MLP makes extraction slow: score every k-th shape
        z = res.model.codes.weight[i].detach()
        with torch.no_grad():
            mesh = extract_field(lambda x, z=z: res.model.sdf(z, x), None, cfg.extract)
        metrics[path.stem] = score(mesh.transformed(s.normalization), path, s.normalization, args)
    info["metrics"] = metrics
    return info


def run_per_shape(args: argparse.Namespace) -> dict[str, Any]:
    from baselines import dual_parameters, per_shape_config
    from compact_sdf.training.train import train

    paths = collection(args.n, ROOT)
    cfg = config(args, args.n)
    shapes = samples(paths, cfg)
    budget = dual_parameters(cfg.model, args.n)
    small = per_shape_config(cfg, budget, args.n)
    t0, c0, load0, steps, metrics = time.perf_counter(), time.process_time(), load(), 0, {}
    for s in shapes:
        model_dir = ROOT / f"per_shape_{args.n}" / s.name
        _clear(model_dir)
        steps += train(model_dir, [s], small, should_stop=cpu_timer(args.minutes * 60 / args.n)).step
    info = train_info(small, steps, time.perf_counter() - t0, load0, time.process_time() - c0)
    info |= {"budget": budget, "parameters_each": dual_parameters(small.model, 1)}
    for path in paths:
        metrics |= score_model(ROOT / f"per_shape_{args.n}" / path.stem, [path], args)
    info["metrics"] = metrics
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=["codes-only", "per-shape"])
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--minutes", type=float, default=15.0)
    p.add_argument("--preset", default="preview")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--resolution", type=int, default=160)
    p.add_argument("--samples", type=int, default=300_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    run = run_codes_only if args.kind == "codes-only" else run_per_shape
    info = run(args) | {"kind": args.kind, "n": args.n, "machine": machine()}
    ROOT.mkdir(parents=True, exist_ok=True)
    (ROOT / f"{args.kind}_{args.n}.json").write_text(json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    main()
