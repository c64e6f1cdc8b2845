"""In-between shapes: are they single clean bodies? Fixed pairs of shared meshes, clean-up off.

Trains one model on every mesh named by the pairs (or reuses it: the directory is keyed by the tag),
decodes ``--steps`` shapes along each pair's path (ends included) and scores each in-between with
``compact_sdf.extract.mesh_quality``: components, share of the area in the largest, watertight, manifold,
and smoothness (mean angle between adjacent face normals) relative to the t-weighted figure of
the two ends. Renders a grid (rows: pairs, columns: steps) into docs/img/.

    .venv/bin/python bench/interpolation.py --tag before
    .venv/bin/python bench/interpolation.py --tag after --set train.blend_weight=1
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
from _harness import CACHE, MESHES, OUT, REPO, load, open_model, write_results
from compact_sdf.config import DEFAULT_PRESET, ExtractConfig

PAIRS = (
    "bunny-fandisk",
    "spot-tray_bottom",
    "hand-airplane",
    "scorpion-featuretype",
    "bunny-spot",
    "fandisk-airplane",
    "hand-tray_bottom",
    "scorpion-bunny",
)


def train_model(
    stems: list[str],
    model_dir: Path,
    preset: str,
    overrides: list[str],
    threads: int,
    device: str = "cpu",
    meshes: Path = MESHES,
) -> Path:
    """Train (or reuse) the model in ``model_dir`` on the meshes ``stems`` (PLY files in ``meshes``);
    its config records the overrides."""
    from compact_sdf.config import get_preset
    from compact_sdf.data import prepare_mesh
    from compact_sdf.training.train import train

    if (model_dir / "checkpoint.pt").exists():
        return model_dir
    cfg = get_preset(preset).override([*overrides, f"train.device={device}"])
    shapes = [prepare_mesh(meshes / f"{s}.ply", cfg=cfg.sampling, cache_dir=CACHE) for s in stems]
    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    train(model_dir, shapes, cfg, sources={s: str(meshes / f"{s}.ply") for s in stems})
    print(f"trained {model_dir} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return model_dir


def score_pair(meshes: list, names: tuple[str, str], keep_fraction: float = 0.0) -> dict:
    """Figures of every step (``mesh_quality.path_quality``); ``keep_fraction > 0`` scores the meshes
    after the opt-in clean-up (``drop_small_parts``) instead."""
    from compact_sdf.extract.interpolate import drop_small_parts
    from compact_sdf.extract.mesh_quality import path_quality

    meshes = [drop_small_parts(m, keep_fraction) for m in meshes]
    return {"pair": "-".join(names), "steps": path_quality([(m.vertices, m.faces) for m in meshes])}


def summarise(pairs: list[dict]) -> dict:
    """Share of in-betweens (ends excluded) that meet each goal (``mesh_quality.path_summary``)."""
    from compact_sdf.extract.mesh_quality import path_summary

    return path_summary([p["steps"] for p in pairs])


def render_grid(rows: list[list], labels: list[str], title: str, path: Path) -> None:
    """Flat-shaded matplotlib render: one row per pair, one column per step, each framed alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    light = np.array([0.4, 0.5, 0.75]) / np.linalg.norm([0.4, 0.5, 0.75])
    cols = len(rows[0])
    fig = plt.figure(figsize=(1.6 * cols, 1.6 * len(rows) + 0.4), dpi=90)
    for r, row in enumerate(rows):
        for c, mesh in enumerate(row):
            ax = fig.add_subplot(len(rows), cols, r * cols + c + 1, projection="3d")
            tm = mesh.to_trimesh()
            shade = 0.25 + 0.75 * np.clip(tm.face_normals @ light, 0, 1)
            colors = np.stack([shade * 0.75, shade * 0.8, shade * 0.9, np.ones_like(shade)], axis=1)
            ax.add_collection3d(Poly3DCollection(tm.triangles, facecolors=colors, linewidths=0))
            lo, hi = tm.bounds
            center, half = (lo + hi) / 2, (hi - lo).max() / 2
            for setter, v in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), center, strict=True):
                setter(v - half, v + half)
            ax.set_box_aspect((1, 1, 1), zoom=1.25)
            ax.view_init(elev=20, azim=-60, vertical_axis="y")
            ax.set_axis_off()
            if c == 0:
                ax.text2D(-0.1, 0.5, labels[r], transform=ax.transAxes, rotation=90, va="center", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.02, right=0.99, top=0.95, bottom=0.0, wspace=0.0, hspace=0.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _library_default(parameter: str) -> str:
    """The default ``interpolate_shapes`` uses for ``parameter`` (recorded so a run says what it ran)."""
    import inspect

    from compact_sdf.extract.interpolate import interpolate_shapes

    return str(inspect.signature(interpolate_shapes).parameters[parameter].default)


def _label(run: dict) -> str:
    return f"{run['tag']}, in-betweens {run.get('between_mode', '?')}, path {run.get('path', '?')}"


def markdown(results: list[dict]) -> str:
    """Per-pair table of one run (in-betweens only) and a summary table over several runs."""
    lines = ["| run | in-betweens | one body | manifold | one body + manifold | watertight | "
             "smooth <= 1.2x ends | mean components | mean largest share | mean / max rel. smoothness |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        m = r["summary"]
        lines.append(
            f"| {_label(r)} | {m['in_betweens']} | {m['one_body']:.0%} | {m['manifold']:.0%} | "
            f"{m['one_body_and_manifold']:.0%} | {m['watertight']:.0%} | {m['smooth_within_goal']:.0%} | "
            f"{m['mean_components']:.2f} | {m['mean_largest_share']:.4f} | "
            f"{m['mean_relative_smoothness']:.2f} / {m['max_relative_smoothness']:.2f} |"
        )
    for r in results:
        lines += ["", f"**{_label(r)}** (components / largest share / relative smoothness per in-between; "
                  "ends: components)", "", "| pair | ends | t=1/6 | 2/6 | 3/6 | 4/6 | 5/6 | not manifold |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for pair in r["pairs"]:
            st = pair["steps"]
            cells = [
                f"{s['components']} / {s['largest_share']:.3f} / {s['relative_smoothness']:.2f}"
                for s in st[1:-1]
            ]
            bad = sum(not s["manifold"] for s in st[1:-1])
            ends = f"{st[0]['components']}, {st[-1]['components']}"
            lines.append(f"| {pair['pair']} | {ends} | {' | '.join(cells)} | {bad} |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tag", default="run", help="names the outputs (and the default model directory)")
    p.add_argument("--model", default=None, help="model directory (default: out/bench/interp_<tag>)")
    p.add_argument("--pairs", nargs="+", default=list(PAIRS), help="a-b stems in ../shared/meshes")
    p.add_argument("--train-meshes", nargs="*", default=None, help="stems to train on (default: the pairs')")
    p.add_argument("--preset", default=DEFAULT_PRESET)
    p.add_argument("--set", nargs="*", default=[], help="config overrides for training, section.key=value")
    p.add_argument("--steps", type=int, default=7, help="shapes along each path, ends included")
    p.add_argument("--path", default=None, help="linear or slerp (default: the library's default)")
    p.add_argument(
        "--between-mode",
        default=None,
        help="branches for the in-betweens: generalization, fused, ... (default: library)",
    )
    p.add_argument(
        "--join-gap", type=float, default=None, help="join parts closer than this (default: library)"
    )
    p.add_argument("--resolution", type=int, default=ExtractConfig().resolution)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--keep-fraction",
        type=float,
        default=0.0,
        help="also score after dropping parts below this share of the largest",
    )
    p.add_argument("--render", default=None, help="picture path (default: docs/img/interp_<tag>.png)")
    p.add_argument("--json", default=None, help="default: out/bench/interpolation_<tag>.json")
    p.add_argument("--report", nargs="+", default=None, help="only print markdown tables of these JSON files")
    return p.parse_args()


def main() -> None:
    from compact_sdf.extract.interpolate import interpolate_shapes

    args = parse_args()
    if args.report:
        runs = [json.loads(Path(f).read_text()) for f in args.report]
        runs += [
            {**r, **r["clean_up"], "tag": f"{r['tag']} + clean-up {r['clean_up']['keep_fraction']}"}
            for r in runs
            if "clean_up" in r
        ]
        print(markdown(runs))
        return
    torch.set_num_threads(args.threads)
    pairs = [tuple(p.split("-")) for p in args.pairs]
    stems = args.train_meshes or list(dict.fromkeys(s for p in pairs for s in p))
    model_dir = Path(args.model) if args.model else OUT / f"interp_{args.tag}"
    load_start = load()
    train_model(stems, model_dir, args.preset, args.set, args.threads)
    loaded = open_model(model_dir)
    ecfg = replace(loaded.config.extract, resolution=args.resolution)
    kwargs = {k: v for k, v in (("mode", args.path), ("between_mode", args.between_mode)) if v}
    if args.join_gap is not None:
        kwargs["join_gap"] = args.join_gap
    results, rows, cleaned = [], [], []
    t0 = time.perf_counter()
    for a, b in pairs:
        meshes = interpolate_shapes(loaded, [a, b], args.steps, cfg=ecfg, **kwargs)
        results.append(score_pair(meshes, (a, b)))
        if args.keep_fraction > 0:
            cleaned.append(score_pair(meshes, (a, b), args.keep_fraction))
        rows.append(meshes)
        inner = results[-1]["steps"][1:-1]
        parts = [s["components"] for s in inner]
        rel = [round(s["relative_smoothness"], 2) for s in inner]
        print(f"{a}-{b}: components {parts} relative smoothness {rel}", file=sys.stderr)
    summary = summarise(results)
    out = {
        "tag": args.tag,
        "model": str(model_dir),
        "config_overrides": args.set,
        "path": args.path or _library_default("mode"),
        "between_mode": args.between_mode or _library_default("between_mode"),
        "join_gap": float(_library_default("join_gap")) if args.join_gap is None else args.join_gap,
        "resolution": args.resolution,
        "decode_seconds": time.perf_counter() - t0,
        "summary": summary,
        "pairs": results,
    }
    if cleaned:  # the same meshes after the opt-in clean-up
        out["clean_up"] = {
            "keep_fraction": args.keep_fraction,
            "summary": summarise(cleaned),
            "pairs": cleaned,
        }
    write_results(Path(args.json or OUT / f"interpolation_{args.tag}.json"), out, load_start)
    print(json.dumps(summary, indent=2))
    if args.render != "none":
        setting = " ".join(args.set) or "default training"
        title = f"{args.tag}: {setting}; path {out['path']}, in-betweens {out['between_mode']}"
        picture = Path(args.render or REPO / "docs" / "img" / f"interp_{args.tag}.png")
        render_grid(rows, [f"{a}-{b}" for a, b in pairs], title, picture)


if __name__ == "__main__":
    main()
