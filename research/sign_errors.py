"""Where a trained model is wrong about inside and outside: sign errors on each shape's own samples.

For each named shape of a model: the share of its training samples with ``sdf < -eps`` (inside)
that s_o / s_g put outside, the share with ``sdf > eps`` put inside, the mean absolute error on
each side, the deepest inside value (half the thickness of the thinnest body part), and the fused
reconstruction's parts and genus against the ground truth's. Thin boards and walls show up as
inside samples called outside.

    .venv/bin/python bench/sign_errors.py --model out/bench/collection/ours_50 \\
        --meshes out/bench/collection/meshes --shapes shelf_06 shelf_01 chair_05 vase_03 bunny
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

EPS = 0.002  # normalised units: samples closer to the surface than this are left out


def main() -> None:
    from compact_sdf.checkpoint import load_model
    from compact_sdf.data.load import load_mesh
    from compact_sdf.data.parallel import prepare_many
    from compact_sdf.extract.fusion import extract_shape

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--meshes", required=True, help="folder with <shape>.ply")
    p.add_argument("--shapes", nargs="+", required=True)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--cache", default="out/cache")
    args = p.parse_args()
    torch.set_num_threads(1)
    loaded = load_model(Path(args.model))
    paths = [Path(args.meshes) / f"{s}.ply" for s in args.shapes]
    shapes = prepare_many(paths, loaded.config.sampling, Path(args.cache), jobs=1, progress=False)
    ecfg = replace(loaded.config.extract, resolution=args.resolution)
    for s, path in zip(shapes, paths, strict=True):
        z = loaded.code(s.name)
        x, d = torch.as_tensor(s.ovf_points), torch.as_tensor(s.ovf_sdf)
        with torch.no_grad():
            po, pg = loaded.model.sdf_ovf(z, x).reshape(-1), loaded.model.sdf_gen(z, x).reshape(-1)
        inside, outside = d < -EPS, d > EPS
        mae_in, mae_out = (po[inside] - d[inside]).abs().mean(), (po[outside] - d[outside]).abs().mean()
        rec = extract_shape(loaded, s.name, ecfg, "fused").to_trimesh()
        gt = load_mesh(path)
        print(
            f"{s.name}: inside samples {inside.float().mean():.3f} of {len(d)}; called outside by "
            f"s_o {(po[inside] >= 0).float().mean():.3f}, s_g {(pg[inside] >= 0).float().mean():.3f}; "
            f"outside called inside by s_o {(po[outside] < 0).float().mean():.3f}; s_o MAE inside "
            f"{mae_in:.4f}, outside {mae_out:.4f}; "
            f"deepest inside {d.min():.4f}; fused N={args.resolution}: "
            f"{len(rec.split(only_watertight=False))} parts, genus {(2 - rec.euler_number) // 2} "
            f"(GT genus {(2 - gt.euler_number) // 2}), area {rec.area / gt.area:.3f} x GT",
            flush=True,
        )


if __name__ == "__main__":
    main()
