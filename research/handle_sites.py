"""Where a reconstruction's extra handles are: the sign errors that change its genus.

The fused field of one shape and the ground truth's signed distance are sampled on the same
lattice (N per side, dense: minutes at N = 128 on one thread); the lattice vertices where their
signs differ are grouped into connected clusters, and each cluster that reaches at least
``--depth`` into the true body or out of it is set to the true sign alone, the rest unchanged.
A cluster whose correction changes the genus is a site of a wrong handle: a *perforation* (the
truth is inside: a wall the model opened) or a *bridge* (the truth is outside: a gap it closed).

    .venv/bin/python bench/handle_sites.py --model DIR --shape featuretype --resolution 128
    # then both branches at the wrong-signed vertices within 3 cells of one site
    .venv/bin/python bench/handle_sites.py --model DIR --shape featuretype --at -0.891 0.354 0.042
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from fused_lattice import add_shape_options, dense_fused, load, source_mesh
from scipy import ndimage


def main() -> None:
    from compact_sdf.data.groundtruth import signed_distance
    from compact_sdf.extract.dense import mesh_volume
    from compact_sdf.extract.lattice import Lattice
    from compact_sdf.surface_figures import shape_stats

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_options(p)
    p.add_argument("--depth", type=float, default=0.002, help="normalised units (default 0.002)")
    p.add_argument("--at", type=float, nargs=3, metavar=("X", "Y", "Z"), help="show one site's vertices")
    args = p.parse_args()
    loaded = load(args)
    n, model, z = args.resolution, loaded.model, loaded.code(args.shape)
    gt = source_mesh(loaded, args.shape, args.mesh_dir)
    if args.at:
        # the lattice vertices within 3 cells of the point where s_o's sign is wrong
        centre = np.round((np.array(args.at) + 1) * n / 2).astype(int)
        near = np.stack(np.meshgrid(*[np.arange(c - 3, c + 4) for c in centre], indexing="ij"), -1)
        near = near.reshape(-1, 3)
        points = Lattice(n).points(near)
        truth = signed_distance(gt.vertices, gt.faces, points)
        with torch.no_grad():
            x = torch.from_numpy(points.astype(np.float32))
            s_o, s_g = (f(z, x).numpy().ravel() for f in (model.sdf_ovf, model.sdf_gen))
        for i in np.flatnonzero((np.sign(s_o) != np.sign(truth)) & (np.abs(truth) > args.depth)):
            print(f"vertex {near[i].tolist()}: GT sdf {truth[i]:+.4f}, s_o {s_o[i]:+.4f}, s_g {s_g[i]:+.4f}")
        return
    fused = dense_fused(loaded, args.shape, n)
    side = n + 1
    points = Lattice(n).points(np.indices((side,) * 3).reshape(3, -1).T)
    truth = signed_distance(gt.vertices, gt.faces, points).reshape((side,) * 3)

    def genus(volume: np.ndarray) -> int:
        return shape_stats(mesh_volume(volume, block=64).to_trimesh())["genus"]

    base = genus(fused)
    print(f"{args.shape} at N = {n}: fused genus {base}, the ground truth's on this lattice {genus(truth)}")
    wrong = np.sign(fused) != np.sign(truth)
    labels, count = ndimage.label(wrong)
    index = np.arange(1, count + 1)
    sizes = ndimage.sum(wrong, labels, index)
    depth = ndimage.maximum(np.abs(truth), labels, index)
    todo = [k for k in np.argsort(-sizes) if depth[k] > args.depth]
    print(f"{count} clusters of sign errors, {len(todo)} reach deeper than {args.depth}")
    for k in todo:
        where = labels == k + 1
        fixed = fused.copy()
        fixed[where] = np.where(truth[where] < 0, -1.0, 1.0) * (np.abs(fused[where]) + 1e-4)
        after = genus(fixed)
        if after != base:
            kind = "perforation" if (truth[where] < 0).mean() > 0.5 else "bridge"
            centre = np.round(np.argwhere(where).mean(0) * 2.0 / n - 1, 3)
            print(
                f"cluster of {int(sizes[k])} vertices, {kind} at {centre.tolist()}, "
                f"|GT sdf| up to {depth[k]:.4f}: genus {base} -> {after}",
                flush=True,
            )


if __name__ == "__main__":
    main()
