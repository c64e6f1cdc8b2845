"""How wide the distance fusion's band must be: measured on a trained model, not guessed.

Coverage: for every shape, the share of its true surface (area-uniform samples of the ground
truth, in the model's normalised units) where ``|s_g| <= k * band_width``; the distance band
must hold nearly all of it, or s_o's detail there is replaced by s_g's. Width scan (``--cd``):
fused Chamfer distance for several widths on the given shapes at one resolution, beside the
paper's fusion; a wider band also takes in more of s_o where it is wrong (few samples).

    .venv/bin/python bench/fusion_width.py --model DIR
    .venv/bin/python bench/fusion_width.py --model DIR --cd cow knight_small --widths 0.5 0.75 1.0
    .venv/bin/python bench/fusion_width.py --model DIR --slopes cow hand
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

MESHES = Path(__file__).resolve().parents[2] / "shared" / "meshes"
KS = (0.5, 0.75, 1.0, 1.5)


def coverage(loaded, names: list[str], samples: int, mesh_dir: Path) -> None:
    """The true surface's shares at several widths, beside the share that training recorded at the
    default width from its own points (``band_check``, recomputed here from the cached samples)."""
    from compact_sdf.data.load import load_mesh
    from compact_sdf.extract.band_check import band_coverage, generalization_set
    from compact_sdf.tasks import load_samples

    band, k0 = loaded.config.sampling.band_width, loaded.config.extract.width
    sets, _ = load_samples([(n, str(mesh_dir / f"{n}.ply")) for n in names], loaded.config, None)
    rows = [loaded.shape_index(n) for n in names]
    gen_sets = [generalization_set(s, torch.device("cpu")) for s in sets]
    recorded = band_coverage(loaded.model, gen_sets, loaded.config, rows)
    print(f"training band half-width {band:.4f}; share of the true surface with |s_g| <= k x band\n")
    print(
        "| shape | max \\|s_g\\| on the surface | "
        + " | ".join(f"k = {k}" for k in KS)
        + f" | band_check at k = {k0} (training points) |"
    )
    print("|---|---|" + "---|" * (len(KS) + 1))
    for name, check in zip(names, recorded, strict=True):
        info = loaded.shapes[loaded.shape_index(name)]
        points = info.normalization.to_unit(load_mesh(mesh_dir / f"{name}.ply").sample(samples, seed=0))
        with torch.no_grad():
            x = torch.from_numpy(np.asarray(points, dtype=np.float32))
            gen = loaded.model.sdf_gen(loaded.code(name), x).reshape(-1).abs().numpy()
        shares = [f"{(gen <= k * band).mean():.5f}" for k in KS]
        print(f"| {name} | {gen.max():.3f} | " + " | ".join(shares) + f" | {check.share:.5f} |")


def width_scan(loaded, names: list[str], widths: list[float], resolution: int, samples: int) -> None:
    from compact_sdf.data.load import load_mesh
    from compact_sdf.evaluate import evaluate_shape

    base = replace(loaded.config.extract, resolution=resolution)
    runs = [("paper n=3", replace(base, fusion="paper", band=3))]
    runs += [(f"width {w}", replace(base, fusion="distance", width=w)) for w in widths]
    print(f"\n| shape (N = {resolution}) | " + " | ".join(k for k, _ in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for name in names:
        gt = load_mesh(MESHES / f"{name}.ply")
        cells = [evaluate_shape(loaded, name, gt, cfg, samples=samples)[0]["chamfer"] for _, cfg in runs]
        print(f"| {name} | " + " | ".join(f"{c:.3e}" for c in cells) + " |")


def slopes(loaded, names: list[str], resolution: int) -> None:
    """The steepest s_g edge slope the search would measure with nothing dropped (its guard's input)."""
    from compact_sdf.extract.search import Memo, _search

    cfg = replace(loaded.config.extract, resolution=resolution)
    print(f"\n| shape | steepest s_g edge slope, N = {resolution} |\n|---|---|")
    for name in names:
        z = loaded.code(name)
        slope = _search(
            Memo(lambda x, z=z: loaded.model.sdf_gen(z, x), cfg, "cpu"), (0.0, 0.0), float("inf")
        )[1]
        print(f"| {name} | {slope:.2f} |")


def main() -> None:
    from compact_sdf.checkpoint import load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--samples", type=int, default=200_000)
    p.add_argument("--cd", nargs="*", default=[], help="shapes for the width scan")
    p.add_argument("--widths", type=float, nargs="+", default=[0.5, 0.75, 1.0])
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--cd-samples", type=int, default=300_000)
    p.add_argument("--slopes", nargs="*", default=[], help="shapes for the slope measurement")
    p.add_argument("--mesh-dir", type=Path, default=MESHES, help="the models' source meshes, <name>.ply")
    args = p.parse_args()
    torch.set_num_threads(1)
    loaded = load_model(args.model)
    coverage(loaded, loaded.names, args.samples, args.mesh_dir)
    if args.slopes:
        slopes(loaded, args.slopes, args.resolution)
    if args.cd:
        width_scan(loaded, args.cd, args.widths, args.resolution, args.cd_samples)


if __name__ == "__main__":
    main()
