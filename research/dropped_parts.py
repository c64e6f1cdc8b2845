"""Which parts of the overfitting branch's mesh the default fusion drops, and are they real?

For one shape of a trained model: s_o alone (the guarded sparse search) and the fused mesh, each
listed part by part with its vertex count, enclosed volume in training-lattice cells (the speck
rule's unit), its distance to s_g's surface (``|s_g|`` at its vertices; the near-s_g rule keeps a
part with one vertex within half the fusion width) and its distance to the ground truth (``|GT
sdf|``). A dropped part far from the ground truth was an artefact; one on it was lost detail.

    .venv/bin/python bench/dropped_parts.py --model DIR --shape cheburashka --resolution 128
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

MESHES = Path(__file__).resolve().parents[2] / "shared" / "meshes"


def main() -> None:
    from compact_sdf.checkpoint import load_model
    from compact_sdf.data.groundtruth import signed_distance
    from compact_sdf.data.load import load_mesh
    from compact_sdf.extract.dense import KEEP_WITHIN, speck_volume
    from compact_sdf.extract.fusion import extract_shape, fusion_width
    from compact_sdf.extract.lattice import evaluate
    from compact_sdf.metrics import normalized

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--shape", required=True)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--mesh-dir", type=Path, default=MESHES, help="where <shape>.ply lies")
    args = p.parse_args()
    torch.set_num_threads(1)
    loaded = load_model(args.model)
    cfg = replace(loaded.config.extract, resolution=args.resolution)
    norm = loaded.shapes[loaded.shape_index(args.shape)].normalization
    gt = normalized(load_mesh(args.mesh_dir / f"{args.shape}.ply"), norm)
    z = loaded.code(args.shape)
    cell = speck_volume(loaded.config.sampling.fine_cells, args.resolution)
    near = KEEP_WITHIN * fusion_width(cfg, loaded.config.sampling.band_width)
    print(f"{args.model} {args.shape} N = {args.resolution}; kept: a vertex with |s_g| <= {near:.4f}")
    print("| mesh | part | vertices | volume (rule cells) | \\|s_g\\| min / max | \\|GT sdf\\| mean / max |")
    print("|---|---|---|---|---|---|")
    for mode in ("overfitting-sparse", "fused"):
        mesh = extract_shape(loaded, z, cfg, mode)  # unit coordinates, like the GT above
        label = mesh.component_labels()
        volume = mesh.component_volumes(label)
        sg = np.abs(evaluate(lambda x: loaded.model.sdf_gen(z, x), mesh.vertices, cfg.batch_points, z.device))
        dist = np.abs(signed_distance(gt.vertices, gt.faces, mesh.vertices))
        for k in range(int(label.max()) + 1):
            on = label == k
            print(
                f"| {mode} | {k} | {on.sum()} | {abs(volume[k]) / cell:.1f} | "
                f"{sg[on].min():.4f} / {sg[on].max():.4f} | {dist[on].mean():.4f} / {dist[on].max():.4f} |"
            )


if __name__ == "__main__":
    main()
