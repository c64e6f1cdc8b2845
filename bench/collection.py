"""Collections: one model for 1 to 55 shapes, adding shapes, interpolation, bytes per shape.

Every run is one process (so its peak memory is its own) and writes ``ROOT/<kind>_<n>.json``:

    python bench/collection.py ours --n 50 --minutes 15        # dual model, collection rule
    OMP_NUM_THREADS=1 python -m torch.distributed.run --standalone --nproc_per_node=2 \
        bench/collection.py ours --shapes 50 --minutes 15      # the same on two CPU ranks
    python bench/collection.py add --n 50 --new 5 --minutes 5  # continue ours_50 with 5 more shapes
    python bench/collection.py add --n 50 --new 5 --fit        # or fit only their codes
    python bench/collection.py interp --n 50                   # in-family vs cross-family blends
    python bench/collection.py fp16 --n 50                     # stored bytes, fp16 grid fidelity
    python bench/collection.py report                          # tables + plot from the json files
    python bench/collection.py shapes                          # render the first 14 shapes
    python bench/collection.py floor --n 50                    # each mesh against itself (noise floor)
    python bench/collection.py step-cost --n 50 --set K=V      # CPU seconds a step of a setting
    python bench/collection.py unlike --preset preview         # Add to Model's default on unlike shapes

Shapes come from ``compact_sdf.data.collection`` (procedural families + ../shared/meshes), the
first ``n`` of its round-robin order. Training uses the preset scaled by
``compact_sdf.training.scale.for_collection`` and stops at ``--minutes`` of CPU time (per rank) if the rule's
steps take longer (the load is recorded at start and end). Scores: fused extraction at
``--resolution`` (default 160, not a training lattice of the preview preset), area-uniform samples
on both meshes. (The same-budget baselines, codes-only and per-shape, are in research/.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _collection import collection, config, samples, score_model, train_info
from _harness import CACHE, MESHES, OUT, REPO, cpu_timer, load, machine, peak_mb
from compact_sdf.config import DEFAULT_PRESET

ROOT = OUT / "collection"


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    """Train ours_<n>; under torchrun (``--nproc_per_node 2``: one rank per core) rank 0 scores and
    the others stop after training. The cap is then each rank's CPU time, about the wall time on
    an idle machine, and the reported CPU seconds are the sum over ranks."""
    from compact_sdf.training import distributed as ddp
    from compact_sdf.training.train import train

    world = ddp.setup("cpu")
    cfg = config(args, args.n)
    for rank in range(world.size):  # rank 0 writes the meshes and the sample cache, then the others read
        if rank == world.rank:
            paths = collection(args.n, ROOT)
            shapes = samples(paths, cfg)
        ddp.any_rank(False, world)
    model_dir = ROOT / f"ours_{args.n}"
    if world.is_main:
        _clear(model_dir)
    ddp.any_rank(False, world)  # the other ranks must not see the previous run's model
    t0, c0, load0 = time.perf_counter(), time.process_time(), load()
    res = train(model_dir, shapes, cfg, should_stop=cpu_timer(args.minutes * 60))
    cpu = sum(ddp.mean_over_ranks([time.process_time() - c0], world)) * world.size
    ddp.teardown(world)
    if not world.is_main:
        sys.exit(0)
    info = train_info(cfg, res.step, time.perf_counter() - t0, load0, cpu) | {"ranks": world.size}
    last = paths[len(paths) - args.eval_last :] if args.eval_last else []
    scored = paths[: len(paths) - len(last) : args.eval_every] + last
    info["metrics"] = score_model(model_dir, scored, args)
    return info


def run_add(args: argparse.Namespace) -> dict[str, Any]:
    """Continue ours_<n> with ``--new`` more shapes for ``--minutes``, or (``--fit``) fit only their
    codes with the decoder frozen, as the panel's "Add Selected to Model" does; score old and new."""
    import shutil

    from compact_sdf.checkpoint import read_checkpoint
    from compact_sdf.training.add_shape import fit_shape
    from compact_sdf.training.code_inversion import FIT_ITERATIONS
    from compact_sdf.training.train import train

    paths = collection(args.n + args.new, ROOT)
    base = ROOT / f"ours_{args.n}"
    model_dir = ROOT / f"add_{args.n}_{args.new}{'_fit' * args.fit}"
    _clear(model_dir)
    shutil.copytree(base, model_dir)
    done = int(read_checkpoint(model_dir)["step"])
    cfg = config(args, args.n)  # the base model's settings: resume needs the same model
    cfg = cfg.override({"train.steps": done + cfg.train.steps})
    shapes = samples(paths, cfg)
    t0, c0, load0 = time.perf_counter(), time.process_time(), load()
    if args.fit:
        for s in shapes[args.n :]:
            fit_shape(model_dir, s, cfg, mode="code")
        steps = FIT_ITERATIONS * args.new
    else:
        steps = (
            train(model_dir, shapes, cfg, resume=True, should_stop=cpu_timer(args.minutes * 60)).step - done
        )
    info = train_info(cfg, steps, time.perf_counter() - t0, load0, time.process_time() - c0)
    info["base_steps"] = done
    scored = paths[: args.n : args.eval_every] + paths[args.n :]  # every k-th old shape, all new ones
    info["metrics"] = score_model(model_dir, scored, args)
    info["new"] = [p.stem for p in paths[args.n :]]
    return info


def run_score(args: argparse.Namespace) -> dict[str, Any]:
    """Score every k-th shape of a model trained by an ``ours`` run that was stopped after training
    (the shared machine made a full scoring too slow); its training figures come from the
    checkpoint, ``--cpu-s`` (the run's cap) and ``--peak-mb`` (read from /proc while it ran)."""
    from compact_sdf.checkpoint import read_checkpoint

    paths = collection(args.n, ROOT)
    model_dir = ROOT / f"ours_{args.n}"
    data = read_checkpoint(model_dir)
    cfg = config(args, args.n)
    steps = int(data["step"])
    info = {
        "config": data["config"],
        "rule_steps": cfg.train.steps,
        "steps": steps,
        "train_s": float(data["elapsed"]),
        "train_cpu_s": args.cpu_s,
        "step_cpu_s": args.cpu_s / max(1, steps),
        "peak_train_mb": args.peak_mb,
        "load_start": [args.load_start],
        "load_end": [args.load_end],
        "scored_every": args.eval_every,
    }
    info["metrics"] = score_model(model_dir, paths[:: args.eval_every], args)
    return info


# Add to Model on a shape unlike the model's: (model's shapes, the added shape), from ../shared/meshes
UNLIKE = {
    "hard into smooth": (("spot", "bunny"), "featuretype"),
    "smooth into hard": (("fandisk", "tray_bottom"), "cow"),
}


def run_unlike(args: argparse.Namespace) -> dict[str, Any]:
    """Per case: a model of two shapes (the preset, its own steps), then the added shape by the default
    fit (``tasks.FitRequest``'s mode, what the panel sends) and, for comparison, by a code fit only;
    the added shape's scores and the model's shapes' CD before and after."""
    from compact_sdf import tasks
    from compact_sdf.config import get_preset
    from compact_sdf.training.train import train

    cfg = get_preset(args.preset).override({"train.device": "cpu"})
    out: dict[str, Any] = {}
    for case, (names, added) in UNLIKE.items():
        paths = [MESHES / f"{n}.ply" for n in names]
        base = ROOT / "unlike" / case.replace(" ", "_")
        _clear(base)
        train(base / "model", samples(paths, cfg), cfg, sources={p.stem: str(p) for p in paths})
        row: dict[str, Any] = {"before": score_model(base / "model", paths, args)}
        for mode in (tasks.default_of(tasks.FitRequest, "mode"), "code"):
            shutil.copytree(base / "model", base / mode)
            t0, c0 = time.perf_counter(), time.process_time()
            req = tasks.FitRequest(
                str(base / mode), str(MESHES / f"{added}.ply"), mode=mode, cache_dir=str(CACHE)
            )
            res = tasks.fit(req)
            fit = {"mode": res.mode, "code_misses": res.code_misses, "band_misses": res.band_misses}
            fit |= {"iterations": res.iterations}  # code fit: iterations run; full: fine-tune steps
            fit |= {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
            row[mode] = fit | {"metrics": score_model(base / mode, [*paths, MESHES / f"{added}.ply"], args)}
        out[case] = row
        print(unlike_table({case: row}), file=sys.stderr)
    return {"cases": out, "preset": args.preset, "load_end": load()}


def unlike_table(cases: dict[str, Any]) -> str:
    """The markdown rows docs/benchmarks/add_to_model.md shows."""

    def share(misses: dict[str, float], name: str) -> str:
        return f"{100 * misses[name]:.1f}%" if name in misses else ">= 99%"

    lines = []
    for case, row in cases.items():
        names, added = UNLIKE[case]
        for mode in (m for m in row if m != "before"):
            fit, m = row[mode], row[mode]["metrics"]
            first = fit["code_misses"] if fit["mode"] == "full" else fit["band_misses"]
            cd = ", ".join(f"{n} {row['before'][n]['chamfer']:.2e} -> {m[n]['chamfer']:.2e}" for n in names)
            lines.append(
                f"| {case} | {added} | {mode} | {fit['mode']} | {share(first, added)} | "
                f"{share(fit['band_misses'], added)} | {m[added]['fscore@0.01']:.3f} | "
                f"{m[added]['chamfer']:.2e} | {cd} | {fit['wall_s']:.0f} s |"
            )
    return "\n".join(lines)


def _clear(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


KINDS = {
    "score": run_score,
    "ours": run_ours,
    "add": run_add,
}


def main() -> None:
    global ROOT
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "kind", choices=[*KINDS, "interp", "fp16", "report", "shapes", "floor", "step-cost", "unlike"]
    )
    p.add_argument("--n", "--shapes", dest="n", type=int, default=50, help="--shapes under torchrun")
    p.add_argument("--new", type=int, default=5)
    p.add_argument("--fit", action="store_true", help="add: fit the new codes only (decoder frozen)")
    p.add_argument("--minutes", type=float, default=15.0, help="training cap in CPU minutes of this process")
    p.add_argument("--preset", default=DEFAULT_PRESET)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--resolution", type=int, default=160)
    p.add_argument("--samples", type=int, default=300_000, help="surface samples per mesh for the scores")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--eval-every", type=int, default=1, help="codes-only, add: score every k-th (old) shape only"
    )
    p.add_argument(
        "--eval-last", type=int, default=0, help="ours: score the last m shapes too (the ones 'add' adds)"
    )
    p.add_argument("--fp16-shapes", type=int, default=10, help="shapes scored with the fp16 grid")
    p.add_argument("--cpu-s", type=float, default=0.0, help="score: the stopped run's training CPU seconds")
    p.add_argument("--peak-mb", type=float, default=0.0, help="score: the stopped run's peak memory")
    p.add_argument("--load-start", type=float, default=0.0, help="score: 1-min load when the run started")
    p.add_argument("--load-end", type=float, default=0.0, help="score: 1-min load when it stopped")
    p.add_argument("--root", default=None, help=f"results folder (default {ROOT.relative_to(REPO)})")
    args = p.parse_args()
    if args.root:
        ROOT = Path(args.root).resolve()
    torch.set_num_threads(args.threads)
    if args.kind == "unlike":
        info = run_unlike(args) | {
            "threads": args.threads,
            "resolution": args.resolution,
            "samples": args.samples,
        }
        (ROOT / "unlike" / "unlike.json").write_text(json.dumps(info, indent=1) + "\n")
        print(unlike_table(info["cases"]))
        return
    if args.kind in ("interp", "fp16", "report", "shapes", "floor", "step-cost"):
        from collection_report import EXTRAS  # the parts that read a trained model

        EXTRAS[args.kind](args, ROOT)
        return
    t0 = time.perf_counter()
    info = KINDS[args.kind](args)
    kind = "ours" if args.kind == "score" else args.kind
    info |= {"kind": kind, "n": args.n, "samples": args.samples, "resolution": args.resolution}
    info |= {"threads": args.threads, "total_s": time.perf_counter() - t0, "peak_mb": peak_mb()}
    info["machine"] = machine()
    name = f"{kind}_{args.n}" + (f"_{args.new}" + "_fit" * args.fit if args.kind == "add" else "")
    ROOT.mkdir(parents=True, exist_ok=True)
    (ROOT / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    f01 = [m["fscore@0.01"] for m in info["metrics"].values()]
    cd = [m["chamfer"] for m in info["metrics"].values()]
    print(f"{name}: {info.get('steps')} steps in {info['train_s']:.0f} s, median CD {np.median(cd):.2e}, "
          f"median F@0.01 {np.median(f01):.3f}, worst {min(f01):.3f}", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
