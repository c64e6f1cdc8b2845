"""Reconstruction fidelity: train one model on several shared meshes, score every shape, ablate.

For each shape and marching-cubes resolution: CD / F / P / R (method.md section 6; area-uniform
samples on both meshes, normalised units, tau 0.005 and 0.01), the release's vertex-protocol CD,
the sampling floor (the GT against itself with other samples), and the fusion ablation
(``evaluate.ABLATION``: generalization only, overfitting only, the paper's fusion with n = 3,
the default distance fusion) on the same model, with each reconstruction's area, genus,
components and manifold check beside the ground truth's (thin parts and holes). The resolution
defaults to 192, which is not one of the training lattices of the preview preset (64 and 128
cells). One reconstruction is rendered next to its ground truth into docs/img/.

The default fusion uses the record of where s_o was trained (``trained_region.py``); the
``fused_no_region`` column is the same fusion without it (``--no-trained-region`` scores only
that). ``--curve 1 2 4`` trains the same model to 1, 2 and 4 times ``--steps`` (each continuing
the previous, which equals a run from scratch) and scores the default fusion of the last state and
of ``best.pt`` at each: more training must not make a shape worse. Stress shapes
(``bench/stress_shapes.py``: housing, statue, ...) are named like the shared meshes.

    .venv/bin/python bench/fidelity.py --preset preview --meshes housing statue tray_bottom featuretype \
        scorpion airplane cow --resolutions 256 --threads 1
    .venv/bin/python bench/fidelity.py --preset preview --meshes housing statue --curve 1 2 4 --samples 200000
    .venv/bin/python bench/fidelity.py --model DIR --meshes all --resolutions 128 256
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import trimesh
from _harness import CACHE, MESHES, OUT, REPO, load, open_model, write_results

STRESS = OUT / "stress"


def mesh_paths(names: list[str]) -> list[Path]:
    """Shared meshes by stem; the procedural stress shapes (``bench/stress_shapes.py``) by name,
    written to out/bench/stress/ first."""
    from stress_shapes import SHAPES, write

    if any(n in SHAPES for n in names) and not all((STRESS / f"{n}.ply").exists() for n in SHAPES):
        write(STRESS)
    return [(STRESS if n in SHAPES else MESHES) / f"{n}.ply" for n in names]


def train_model(
    meshes: list[Path], preset: str, steps: int | None, device: str, start: Path | None = None
) -> Path:
    """Train one model of ``meshes`` (cached by preset, steps and names); ``start`` is a model of
    the same meshes and fewer steps to continue from (a resume is bit-exact, so the result is the
    same as a run of ``steps`` from scratch)."""
    import shutil

    from compact_sdf.config import get_preset
    from compact_sdf.data import prepare_mesh
    from compact_sdf.training.train import train

    cfg = get_preset(preset)
    steps = steps or cfg.train.steps
    cfg = replace(cfg, train=replace(cfg.train, steps=steps, device=device))
    model_dir = OUT / f"fidelity_{preset}_{steps}_{'_'.join(m.stem for m in meshes)}"
    if (model_dir / "checkpoint.pt").exists():
        return model_dir
    t0 = time.perf_counter()
    shapes = [prepare_mesh(m, cfg=cfg.sampling, cache_dir=CACHE) for m in meshes]
    print(
        f"samples ready in {time.perf_counter() - t0:.0f} s; training {preset} for {steps} steps",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    if start is not None:
        shutil.copytree(start, model_dir)
    result = train(model_dir, shapes, cfg, resume=start is not None, sources={m.stem: str(m) for m in meshes})
    print(f"trained in {time.perf_counter() - t0:.0f} s; held-out check got worse: {result.check_worse}",
          file=sys.stderr)  # fmt: skip
    return model_dir


def render_pair(gt: trimesh.Trimesh, pred: trimesh.Trimesh, title: str, path: Path) -> None:
    """Flat-shaded software render (matplotlib) of ground truth and reconstruction side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    light = np.array([0.4, 0.5, 0.75])
    light /= np.linalg.norm(light)
    lo, hi = gt.bounds
    center, half = (lo + hi) / 2, (hi - lo).max() / 2
    fig = plt.figure(figsize=(10, 5), dpi=110)
    for i, (mesh, label) in enumerate(((gt, "ground truth"), (pred, title))):
        ax = fig.add_subplot(1, 2, i + 1, projection="3d")
        shade = 0.25 + 0.75 * np.clip(mesh.face_normals @ light, 0, 1)
        colors = np.stack([shade * 0.75, shade * 0.8, shade * 0.9, np.ones_like(shade)], axis=1)
        ax.add_collection3d(Poly3DCollection(mesh.triangles, facecolors=colors, linewidths=0))
        for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), center, strict=True):
            setter(c - half, c + half)
        ax.set_box_aspect((1, 1, 1), zoom=1.3)
        ax.view_init(elev=15, azim=-60, vertical_axis="y")
        ax.set_axis_off()
        ax.set_title(label)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    from compact_sdf.data.load import load_mesh
    from compact_sdf.evaluate import ablate, evaluate_shape
    from compact_sdf.metrics import evaluate_meshes, normalized
    from compact_sdf.surface_figures import shape_stats

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--meshes", nargs="+", default=["bunny", "spot", "fandisk"], help="stems in ../shared/meshes, or all"
    )
    p.add_argument("--preset", default="preview")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--resolutions", type=int, nargs="+", default=[192])
    p.add_argument("--model", default=None, help="a trained model directory (default: train one)")
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument(
        "--sparse-overfitting", action="store_true", help="s_o alone via the guarded sparse search"
    )
    p.add_argument("--render", default=None, help="shape to render (default: none)")
    p.add_argument(
        "--no-trained-region",
        action="store_true",
        help="the default fusion without the record of where s_o was trained (the ablation)",
    )
    p.add_argument("--curve", type=int, nargs="+", default=None, help="multiples of --steps to score")
    p.add_argument("--json", default=str(OUT / "fidelity.json"))
    p.add_argument("--tables", nargs="+", default=None, help="only print the tables of these JSON runs")
    p.add_argument(
        "--goal", nargs="+", default=None, help="only print fused over the better branch for these JSON runs"
    )
    p.add_argument(
        "--refresh",
        nargs="+",
        default=None,
        help="re-score the default fusion of these JSON runs with this checkout (writes *_fresh.json)",
    )
    args = p.parse_args()
    if args.refresh:
        torch.set_num_threads(args.threads)
        for f in args.refresh:
            refresh_fused(Path(f), args.samples)
        return
    if args.goal:
        print_goal([json.loads(Path(f).read_text()) for f in args.goal])
        return
    if args.tables:
        merged = [json.loads(Path(f).read_text()) for f in args.tables]
        for n in merged[0]["resolutions"]:
            print(f"\n### N = {n}\n")
            print_tables({k: v for run in merged for k, v in run["shapes"].items() if str(n) in v}, str(n))
        return
    torch.set_num_threads(args.threads)
    meshes = watertight_meshes() if args.meshes == ["all"] else mesh_paths(args.meshes)
    if args.curve:
        steps_curve(meshes, args)
        return
    model_dir = Path(args.model) if args.model else train_model(meshes, args.preset, args.steps, args.device)
    loaded = open_model(model_dir, device=args.device)
    load_start, results = load(), {}
    for path in meshes:
        name = path.stem
        gt = load_mesh(path)
        norm = loaded.shapes[loaded.shape_index(name)].normalization
        results[name] = {
            "floor": evaluate_meshes(gt, gt, samples=args.samples, seed=100),
            "gt": shape_stats(normalized(gt, norm)),
        }
        for n in args.resolutions:
            t0 = time.perf_counter()
            ecfg = replace(loaded.config.extract, resolution=n, trained_region=not args.no_trained_region)
            results[name][str(n)] = table = ablate(
                loaded, name, gt, ecfg, samples=args.samples, sparse_overfitting=args.sparse_overfitting
            )
            off = replace(ecfg, trained_region=False)
            table["fused_no_region"] = evaluate_shape(loaded, name, gt, off, "fused", samples=args.samples)[0]
            fused = table["fused"]
            print(f"{name} N={n}: CD {fused['chamfer']:.3e} F@0.01 {fused['fscore@0.01']:.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)  # fmt: skip
            out = {"model": str(model_dir), "preset": loaded.config.preset, "resolutions": args.resolutions}
            out.update({"samples": args.samples, "threads": args.threads, "device": args.device})
            write_results(Path(args.json), {**out, "shapes": results}, load_start)  # after each
        if name == args.render:
            from compact_sdf.extract.fusion import extract_shape

            n = args.resolutions[-1]
            ecfg = replace(loaded.config.extract, resolution=n)
            pred = extract_shape(loaded, name, ecfg, "fused").to_trimesh()
            render_pair(gt, pred, f"fused (distance), N={n}", REPO / "docs" / "img" / f"fidelity_{name}.png")
    for n in args.resolutions:
        print(f"\n### N = {n}\n")
        print_tables(results, str(n))


def refresh_fused(path: Path, samples: int) -> None:
    """The run's ``fused`` entries again, from its model, with this checkout's extraction."""
    import subprocess

    from compact_sdf.data.load import load_mesh
    from compact_sdf.evaluate import ABLATION, evaluate_shape

    run = json.loads(path.read_text())
    loaded = open_model(Path(run["model"]))
    mode, settings = ABLATION["fused"]
    for name, entry in run["shapes"].items():
        gt = load_mesh(MESHES / f"{name}.ply")
        for n in run["resolutions"]:
            ecfg = replace(loaded.config.extract, resolution=n, **settings)
            entry[str(n)]["fused"] = evaluate_shape(loaded, name, gt, ecfg, mode, samples=samples)[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    run["fused_refreshed_at"] = commit.stdout.strip()
    out = path.with_name(path.stem + "_fresh.json")
    out.write_text(json.dumps(run, indent=2) + "\n")
    print(f"{out.name}: fused re-scored at {run['fused_refreshed_at']}", file=sys.stderr)


def steps_curve(meshes: list[Path], args: argparse.Namespace) -> None:
    """Fused CD and normal consistency per shape after each multiple of the steps, for the last
    state and ``best.pt``; the goal: at the most steps, CD at most 1.03x and normal consistency at
    most 0.005 lower than at the fewest (the last state)."""
    from compact_sdf.checkpoint import BEST_NAME
    from compact_sdf.config import get_preset
    from compact_sdf.data.load import load_mesh
    from compact_sdf.evaluate import evaluate_shape

    base = args.steps or get_preset(args.preset).train.steps
    scores: dict[str, list[tuple[float, float]]] = {m.stem: [] for m in meshes}
    model_dir, checks, load_start = None, [], load()
    for multiple in sorted(args.curve):
        model_dir = train_model(meshes, args.preset, base * multiple, args.device, model_dir)
        summary = json.loads((model_dir / "model.json").read_text())["check"]
        checks.append(f"{base * multiple}: mean check {np.mean(list(summary['last'].values())):.3e}, "
                      f"best.pt = step {summary['best_step']}")  # fmt: skip
        for state in ("checkpoint.pt", BEST_NAME):
            loaded = open_model(model_dir / state, device=args.device)
            n = args.resolutions[-1]
            ecfg = replace(loaded.config.extract, resolution=n, trained_region=not args.no_trained_region)
            for path in meshes:
                m = evaluate_shape(loaded, path.stem, load_mesh(path), ecfg, "fused", samples=args.samples)[0]
                scores[path.stem].append((m["chamfer"], m["normal_consistency"]))
                print(f"{path.stem} {base * multiple} {state}: CD {m['chamfer']:.3e} "
                      f"NC {m['normal_consistency']:.4f}", file=sys.stderr)  # fmt: skip
    steps = [base * m for m in sorted(args.curve)]
    results = {
        "preset": args.preset,
        "steps": steps,
        "resolution": args.resolutions[-1],
        "samples": args.samples,
    }
    write_results(Path(args.json), {**results, "shapes": scores, "checks": checks}, load_start)
    print_curve(scores, steps)
    print("\n" + "\n".join(checks))


def print_curve(scores: dict[str, list[tuple[float, float]]], steps: list[int]) -> None:
    """CD / NC at each step count (last state, then best.pt) and the goal's two ratios."""
    head = " | ".join(f"{s}: CD / NC (best.pt CD)" for s in steps)
    print(f"| shape | {head} | CD {steps[-1]} / {steps[0]} | NC change |")
    print("|---|" + "---|" * (len(steps) + 2))
    for name, cells in scores.items():
        last, best = cells[::2], cells[1::2]
        row = [f"{cd:.2e} / {nc:.4f} ({b[0]:.2e})" for (cd, nc), b in zip(last, best, strict=True)]
        ratio, change = last[-1][0] / last[0][0], last[-1][1] - last[0][1]
        print(f"| {name} | " + " | ".join(row) + f" | {ratio:.2f} | {change:+.4f} |")


def watertight_meshes() -> list[Path]:
    """Every shared mesh that passes the edge test (the training input the method asks for)."""
    from compact_sdf.data.load import load_mesh

    return [p for p in sorted(MESHES.glob("*.ply")) if load_mesh(p).is_watertight]


def print_goal(runs: list[dict]) -> None:
    """One row per run, resolution and shape: each branch's CD, the fused CD and fused over the
    better branch (the goal: at most 1.02)."""
    print("| preset | N | shape | s_g CD | s_o CD | paper_n3 CD | fused CD | fused / better branch |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        for n in run["resolutions"]:
            for name, r in run["shapes"].items():
                t = {k: v["chamfer"] for k, v in r[str(n)].items()}
                best = min(t["generalization"], t["overfitting"])
                keys = ("generalization", "overfitting", "paper_n3", "fused")
                cds = " | ".join(f"{t[k]:.2e}" for k in keys)
                print(f"| {run['preset']} | {n} | {name} | {cds} | {t['fused'] / best:.3f} |")


def print_tables(results: dict[str, dict], n: str) -> None:
    """Ablation (CD, F@0.005, F@0.01 per configuration, fused over the better branch) and thin parts."""
    keys = list(next(iter(results.values()))[n])
    print(
        "| shape | "
        + " | ".join(f"{k} CD / F@0.005 / F@0.01" for k in keys)
        + " | fused (/ without the record) over the better branch |"
    )
    print("|---|" + "---|" * (len(keys) + 1))
    for name, r in results.items():
        t = r[n]
        cells = [
            f"{t[k]['chamfer']:.3e} / {t[k]['fscore@0.005']:.3f} / {t[k]['fscore@0.01']:.3f}" for k in keys
        ]
        best = min(t["generalization"]["chamfer"], t["overfitting"]["chamfer"])
        ratios = " / ".join(f"{t[k]['chamfer'] / best:.2f}" for k in ("fused", "fused_no_region") if k in t)
        print(f"| {name} | " + " | ".join(cells) + f" | {ratios} |")
    print()
    print("| shape | GT area | GT genus | " + " | ".join(f"{k} area % / genus / parts" for k in keys) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    for name, r in results.items():
        gt, t = r["gt"], r[n]
        cells = [
            f"{100 * (t[k]['area'] / gt['area'] - 1):+.1f} / {t[k]['genus']} / {t[k]['components']}"
            + ("" if t[k]["manifold"] else " (non-manifold)")
            for k in keys
        ]
        print(f"| {name} | {gt['area']:.3f} | {gt['genus']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
