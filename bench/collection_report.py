"""The parts of bench/collection.py that read a trained collection model: interpolation, bytes, report.

- ``interp``: 7-step paths between pairs inside a family and across families of ``ours_<n>``,
  scored with bench/interpolation.py's figures, and the Chamfer between the ends (how far apart).
- ``fp16``: bytes per shape of the stored model (grid + MLPs + codes) in fp32 and with the grid in
  fp16, beside the source PLY sizes; fidelity with the fp16 grid on the first ``--fp16-shapes``.
- ``report``: markdown tables and docs/img/collection.png from the json files.
- ``step-cost``: CPU seconds per step of the rule at ``--n`` shapes with the ``--set`` overrides,
  one process, apart from a long run's neighbours (what a setting costs, not what a machine did).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ("chair", "table", "vase", "mug", "lamp", "shelf")
IN_FAMILY = [(f"{f}_00", f"{f}_01") for f in FAMILIES]
ACROSS = [(f"{f}_00", f"{g}_01") for f, g in zip(FAMILIES, FAMILIES[1:] + FAMILIES[:1], strict=True)]


def _unit_points(mesh: Any, count: int = 50_000) -> np.ndarray:
    from compact_sdf.metrics import sample_surface

    return sample_surface(mesh.to_trimesh(), count, seed=0)[0]


def _cd(a: np.ndarray, b: np.ndarray) -> float:
    from compact_sdf.metrics import chamfer, nearest

    return chamfer(nearest(a, b)[0], nearest(b, a)[0])


def run_interp(args: Any, root: Path) -> None:
    """In-family against across-family paths of ``ours_<n>``, 7 steps each, scored like
    bench/interpolation.py (components, largest share, manifold, smoothness against the ends) with
    the library's defaults (linear path, in-betweens from s_g with parts joined), clean-up off."""
    from compact_sdf.checkpoint import load_model
    from compact_sdf.extract.interpolate import interpolate_shapes
    from interpolation import score_pair, summarise

    loaded = load_model(root / f"ours_{args.n}")
    ecfg = replace(loaded.config.extract, resolution=args.resolution)
    out: dict[str, Any] = {"resolution": args.resolution, "steps": 7}
    for group, pairs in (("in-family", IN_FAMILY), ("across", ACROSS)):
        scored = []
        for a, b in pairs:
            meshes = interpolate_shapes(loaded, [a, b], 7, cfg=ecfg)
            pair = score_pair(meshes, (a, b))
            pair["ends_cd"] = _cd(_unit_points(meshes[0]), _unit_points(meshes[-1]))
            scored.append(pair)
            print(group, pair["pair"], [s["components"] for s in pair["steps"]], flush=True)
        out[group] = {"summary": summarise(scored), "pairs": scored}
    (root / f"interp_{args.n}.json").write_text(json.dumps(out, indent=1) + "\n")


def run_fp16(args: Any, root: Path) -> None:
    import torch
    from _collection import score_loaded
    from compact_sdf.checkpoint import load_model

    loaded = load_model(root / f"ours_{args.n}")
    model = loaded.model
    sizes = {
        "grid": model.grid.weight.numel() * 4,
        "mlps": sum(p.numel() for m in (model.gen, model.ovf) for p in m.parameters()) * 4,
        "codes": model.codes.weight.numel() * 4,
    }
    n = model.num_shapes
    meshes = sorted((root / "meshes").glob("*.ply"))
    names = set(loaded.names)
    source = [p.stat().st_size for p in meshes if p.stem in names]
    shapes = [p for p in meshes if p.stem in names][: args.fp16_shapes]
    fp32 = score_loaded(loaded, shapes, args)
    with torch.no_grad():
        model.grid.weight.copy_(model.grid.weight.half().float())
    fp16 = score_loaded(loaded, shapes, args)
    out = {
        "bytes": sizes,
        "shapes": n,
        "bytes_per_shape_fp32": sum(sizes.values()) / n,
        "bytes_per_shape_fp16_grid": (sizes["grid"] / 2 + sizes["mlps"] + sizes["codes"]) / n,
        "source_ply_bytes_median": float(np.median(source)),
        "source_ply_bytes_total": int(sum(source)),
        "fp32": fp32,
        "fp16": fp16,
    }
    (root / f"fp16_{args.n}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k not in ("fp32", "fp16")}, indent=1))


def _summary(info: dict[str, Any]) -> dict[str, float]:
    m = info["metrics"].values()
    cd = np.array([x["chamfer"] for x in m])
    f5 = np.array([x["fscore@0.005"] for x in m])
    f1 = np.array([x["fscore@0.01"] for x in m])
    return {
        "cd_med": float(np.median(cd)),
        "cd_worst": float(cd.max()),
        "f5_med": float(np.median(f5)),
        "f5_worst": float(f5.min()),
        "f1_med": float(np.median(f1)),
        "f1_worst": float(f1.min()),
    }


def _row(label: str, info: dict[str, Any]) -> str:
    s = _summary(info)
    load = f"{info['load_start'][0]:.1f} / {info['load_end'][0]:.1f}"
    return (
        f"| {label} | {info['n']} | {info['steps']} / {info['rule_steps']} | {info['train_cpu_s']:.0f} | "
        f"{info['train_s']:.0f} | {info['step_cpu_s']:.2f} | {info['peak_train_mb']:.0f} | "
        f"{s['cd_med']:.2e} | {s['cd_worst']:.2e} | "
        f"{s['f5_med']:.3f} | {s['f5_worst']:.3f} | {s['f1_med']:.3f} | {s['f1_worst']:.3f} | {load} |"
    )


HEAD = (
    "| model | shapes | steps done / rule | train CPU s | train wall s | CPU s/step | peak MB | "
    "CD median | CD worst | F@0.005 median | F@0.005 worst | F@0.01 median | F@0.01 worst | "
    "load 1-min start / end |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def run_report(args: Any, root: Path) -> None:
    runs = {p.stem: json.loads(p.read_text()) for p in sorted(root.glob("*.json"))}
    print(HEAD)
    for key in ("ours_1", "ours_5", "ours_20", "ours_50", "codes-only_50", "per-shape_50", "ours_55"):
        if key in runs:
            print(_row(key, runs[key]))
    add = runs.get(f"add_{args.n}_{args.new}")
    if add is not None:
        new = set(add["new"])
        old_m = {k: v for k, v in add["metrics"].items() if k not in new}
        new_m = {k: v for k, v in add["metrics"].items() if k in new}
        base = runs.get(f"ours_{args.n}")
        if base is not None:  # the same old shapes before the addition
            before = {k: base["metrics"][k] for k in old_m}
            print(_row("ours before adding: same old shapes", base | {"metrics": before, "n": len(before)}))
        for label, part in (("add: old shapes", old_m), ("add: new shapes", new_m)):
            print(_row(label, add | {"metrics": part, "n": len(part)}))
    subset = runs.get("codes-only_50", {}).get("metrics", {})
    if subset:  # every baseline and ours on the shapes the codes-only run scored
        for key in ("ours_50", "codes-only_50", "per-shape_50"):
            if key in runs:
                part = {k: runs[key]["metrics"][k] for k in subset}
                print(
                    _row(
                        f"{key} (codes-only's {len(part)} shapes)",
                        runs[key] | {"metrics": part, "n": len(part)},
                    )
                )
    interp = runs.get(f"interp_{args.n}")
    if interp is not None and "in-family" in interp:
        print("\n| paths | in-betweens | one body | manifold | mean components | mean / max rel. smoothness "
              "| ends' Chamfer (median) |\n|---|---|---|---|---|---|---|")  # fmt: skip
        for group in ("in-family", "across"):
            g, cds = interp[group]["summary"], [p["ends_cd"] for p in interp[group]["pairs"]]
            print(f"| {group} | {g['in_betweens']} | {g['one_body']:.0%} | {g['manifold']:.0%} | "
                  f"{g['mean_components']:.2f} | {g['mean_relative_smoothness']:.2f} / "
                  f"{g['max_relative_smoothness']:.2f} | {np.median(cds):.2e} |")  # fmt: skip
    _plot(runs, REPO / "docs" / "img" / "collection.png")


def _plot(runs: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [n for n in (1, 5, 20, 50) if f"ours_{n}" in runs]
    if not sizes:
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=110)
    ours = [_summary(runs[f"ours_{n}"]) for n in sizes]
    # runs stopped before the rule's steps are drawn hollow: they say little about the size itself
    full = [runs[f"ours_{n}"]["steps"] >= runs[f"ours_{n}"]["rule_steps"] for n in sizes]
    for ax, keys in (
        (axes[0], (("cd_med", "o-", "median"), ("cd_worst", "o--", "worst"))),
        (axes[1], (("f1_med", "o-", "F@0.01 median"), ("f5_med", "s-", "F@0.005 median"))),
    ):
        for key, style, label in keys:
            line = ax.plot(sizes, [s[key] for s in ours], style, label=f"ours, {label}")[0]
            short = [(n, s[key]) for n, s, f in zip(sizes, ours, full, strict=True) if not f]
            if short:
                ax.plot(*zip(*short, strict=True), "o", ms=9, mfc="white", color=line.get_color())
    if not all(full):
        axes[0].plot([], [], "o", mfc="white", color="grey", label="stopped before the rule's steps")
    for key, marker in (("codes-only_50", "x"), ("per-shape_50", "^")):
        if key in runs:
            s = _summary(runs[key])
            axes[0].plot([50], [s["cd_med"]], marker, ms=10, label=f"{key[:-3]}, median")
            axes[1].plot([50], [s["f1_med"]], marker, ms=10, label=f"{key[:-3]} F@0.01")
    axes[0].set(xscale="log", yscale="log", xlabel="shapes in the model", ylabel="Chamfer (normalised)")
    axes[1].set(xscale="log", xlabel="shapes in the model", ylabel="F-score", ylim=(0, 1.02))
    axes[2].plot(sizes, [runs[f"ours_{n}"]["step_cpu_s"] for n in sizes], "o-", label="CPU s / step")
    ax2 = axes[2].twinx()
    ax2.plot(sizes, [runs[f"ours_{n}"]["peak_train_mb"] for n in sizes], "s--", color="C1", label="peak MB")
    axes[2].set(xscale="log", xlabel="shapes in the model", ylabel="CPU seconds per step (all ranks)")
    ax2.set_ylabel("peak memory, MB")
    for ax in axes[:2]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"plot: {path}")


def run_shapes(args: Any, root: Path) -> None:
    """Render the first two rounds of the collection (one member of each family per round)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from compact_sdf.data.load import load_mesh
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    names = [e["name"] for e in json.loads((root / "meshes" / "collection.json").read_text())["shapes"]][:14]
    fig = plt.figure(figsize=(14, 4.4), dpi=100)
    light = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    for i, name in enumerate(names):
        mesh = load_mesh(root / "meshes" / f"{name}.ply")
        ax = fig.add_subplot(2, 7, i + 1, projection="3d")
        shade = 0.3 + 0.7 * np.clip(mesh.face_normals @ light, 0, 1)
        colors = np.stack([shade * 0.85, shade * 0.7, shade * 0.5, np.ones_like(shade)], axis=1)
        ax.add_collection3d(Poly3DCollection(mesh.triangles, facecolors=colors, linewidths=0))
        lo, hi = mesh.bounds
        c, h = (lo + hi) / 2, (hi - lo).max() / 2
        ax.set(xlim=(c[0] - h, c[0] + h), ylim=(c[1] - h, c[1] + h), zlim=(c[2] - h, c[2] + h))
        ax.view_init(elev=20, azim=-60)
        ax.set_axis_off()
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    out = REPO / "docs" / "img" / "collection_shapes.png"
    fig.savefig(out)
    print(f"render: {out}")


def run_floor(args: Any, root: Path) -> None:
    """The metrics' sampling floor: each ground truth against itself with other samples."""
    from _collection import collection
    from compact_sdf.data.load import load_mesh
    from compact_sdf.metrics import evaluate_meshes

    out = {}
    for path in collection(args.n, root):
        name, gt = path.stem, load_mesh(path)
        m = evaluate_meshes(gt, gt, samples=args.samples, seed=100)
        out[name] = {k: float(m[k]) for k in ("chamfer", "fscore@0.005", "fscore@0.01")}
    (root / f"floor_{args.n}.json").write_text(json.dumps(out, indent=1) + "\n")
    for k, worst in (("chamfer", max), ("fscore@0.005", min), ("fscore@0.01", min)):
        values = [v[k] for v in out.values()]
        print(f"{k}: median {np.median(values):.4g}, worst {worst(values):.4g}")


def run_step_cost(args: Any, root: Path) -> None:
    """Steps 10-30 of a fresh model of the collection's first ``--n`` shapes; nothing is kept."""
    import tempfile
    import time

    from _collection import collection, config, samples
    from compact_sdf.training.train import train

    cfg = config(args, args.n).override({"train.steps": 30, "train.checkpoint_every": 10**6})
    shapes = samples(collection(args.n, root), cfg)
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        train(Path(tmp) / "m", shapes, cfg, progress=lambda p: stamps.append(time.process_time()))
    print(f"{' '.join(args.overrides) or 'defaults'}: {(stamps[-1] - stamps[9]) / 20:.3f} CPU-s a step")


EXTRAS = {
    "floor": run_floor,
    "interp": run_interp,
    "fp16": run_fp16,
    "report": run_report,
    "shapes": run_shapes,
    "step-cost": run_step_cost,
}
