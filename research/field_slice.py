"""Picture of one plane through a trained shape: inside of the ground truth, of s_o and of s_g.

Where a thin wall or a narrow gap comes back wrong, this shows which branch lost it and how it
sits against the feature grid (cyan lines: the grid's cells). Units are the model's normalised
ones; the ground truth is placed with the model's stored normalisation of the shape.

    .venv/bin/python bench/field_slice.py --model DIR --shape featuretype --axis y --at -0.359 \\
        --lo -0.95 -0.3 --hi -0.65 0.2 --out docs/img/slice_featuretype.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
MESHES = REPO.parent / "shared" / "meshes"
AXES = {"x": 0, "y": 1, "z": 2}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--shape", required=True)
    p.add_argument("--mesh-dir", type=Path, default=MESHES)
    p.add_argument("--axis", choices=sorted(AXES), required=True)
    p.add_argument("--at", type=float, required=True, help="the plane's coordinate on --axis")
    p.add_argument("--lo", type=float, nargs=2, required=True, help="lower corner in the other two axes")
    p.add_argument("--hi", type=float, nargs=2, required=True, help="upper corner in the other two axes")
    p.add_argument("--pixels", type=int, default=400)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from compact_sdf.checkpoint import load_model
    from compact_sdf.data.groundtruth import signed_distance
    from compact_sdf.data.load import load_mesh
    from compact_sdf.metrics import normalized

    torch.set_num_threads(1)
    loaded = load_model(args.model)
    norm = loaded.shapes[loaded.shape_index(args.shape)].normalization
    gt = normalized(load_mesh(args.mesh_dir / f"{args.shape}.ply"), norm)
    axis, r = AXES[args.axis], args.pixels
    u, v = (np.linspace(args.lo[k], args.hi[k], r) for k in range(2))
    uu, vv = np.meshgrid(u, v, indexing="ij")
    pts = np.zeros((r * r, 3))
    pts[:, axis] = args.at
    pts[:, [k for k in range(3) if k != axis]] = np.stack([uu.ravel(), vv.ravel()], 1)
    fields = {"ground truth": signed_distance(np.asarray(gt.vertices), np.asarray(gt.faces), pts)}
    z, model = loaded.code(args.shape), loaded.model.eval()
    with torch.no_grad():
        x = torch.as_tensor(pts, dtype=torch.float32)
        fields["s_o (overfitting)"] = model.sdf_ovf(z, x).numpy()
        fields["s_g (generalization)"] = model.sdf_gen(z, x).numpy()
    cell = 2.0 / (loaded.config.model.grid_res - 1)
    lines = np.arange(-1.0, 1.0 + 1e-9, cell)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    extent = (args.lo[0], args.hi[0], args.lo[1], args.hi[1])
    for ax, (title, f) in zip(axes, fields.items(), strict=True):
        ax.imshow((f.reshape(r, r) < 0).T, origin="lower", extent=extent, cmap="gray_r")
        ax.contour(uu, vv, fields["ground truth"].reshape(r, r), levels=[0], colors="r", linewidths=0.6)
        for line in lines:
            if args.lo[0] <= line <= args.hi[0]:
                ax.axvline(line, color="c", lw=0.3)
            if args.lo[1] <= line <= args.hi[1]:
                ax.axhline(line, color="c", lw=0.3)
        ax.set_title(f"{title}: inside black, true surface red")
    fig.suptitle(f"{args.shape}, plane {args.axis} = {args.at} ({args.model})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
