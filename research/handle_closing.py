"""Which handles does ``extract.handles=close`` close, and is each one right? (checked with the GT)

The fused field of one shape on a dense lattice (N per side, as the extraction makes it), then the
rule of ``compact_sdf/extract/handles.py`` step by step (delta = q/4, q/2, q; perforations, then bridges).
Every cluster of lattice vertices it flips is compared with the ground truth's sign there: *right*
(the model's handle was wrong: a perforated wall, a bridged gap) or *WRONG* (a true hole or gap
closed). ``--closings`` instead prints what plain closings do, without the rule's Euler gate: a
ball (fills gaps between thick parts, not holes in walls one vertex thick) and the union of the
13 line closings (closes those holes, but bridges narrow gaps too).

    .venv/bin/python bench/handle_closing.py --model DIR --shape featuretype --resolution 128
    .venv/bin/python bench/handle_closing.py --model DIR --shape featuretype --closings
"""

from __future__ import annotations

import argparse

import numpy as np
from fused_lattice import add_shape_options, dense_fused, load, source_mesh
from scipy import ndimage


def main() -> None:
    from compact_sdf.data.groundtruth import signed_distance
    from compact_sdf.extract.dense import mesh_volume
    from compact_sdf.extract.handles import close_side, line_cover, quarter_cell
    from compact_sdf.extract.lattice import Lattice
    from compact_sdf.surface_figures import shape_stats

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_options(p)
    p.add_argument("--closings", action="store_true", help="plain ball and line closings, no gate")
    args = p.parse_args()
    loaded = load(args)
    n = args.resolution
    field = dense_fused(loaded, args.shape, n)

    def stats(volume: np.ndarray) -> str:
        s = shape_stats(mesh_volume(volume, block=64).to_trimesh())
        return f"genus {s['genus']}, parts {s['components']}, area {s['area']:.4f}"

    print(f"{args.shape} at N = {n}: {stats(field)}")
    q = quarter_cell(loaded.config.sampling.fine_cells)
    if args.closings:
        inside = field < 0
        shallow = np.flatnonzero(~inside & (field < 2 * q))
        lines = np.zeros(field.shape, dtype=bool)
        lines.flat[shallow[line_cover(inside, shallow)]] = True
        ball = ((np.indices((5, 5, 5)) - 2) ** 2).sum(0) <= 4
        for kind, cover in (
            ("ball, radius 2", ndimage.binary_closing(np.pad(inside, 3), ball)[3:-3, 3:-3, 3:-3]),
            ("13 lines, 2 each way", lines),
        ):
            for delta in (q / 2, q, 2 * q):
                add = cover & ~inside & (field < delta)
                fixed = np.where(add, -np.maximum(field, 1e-5), field)
                print(f"  {kind}, delta {delta:.4f}: {int(add.sum())} set inside, {stats(fixed)}")
        return

    gt = source_mesh(loaded, args.shape, args.mesh_dir)
    right = wrong = 0
    field[np.abs(field) < 1e-6] = 1e-6
    for delta in (q / 4, q / 2, q):
        for sign, kind in ((1.0, "perforation"), (-1.0, "bridge")):
            before = field < 0
            work = field * sign
            close_side(work, delta, orientation=sign)
            field = work * sign
            labels, count = ndimage.label(before != (field < 0), structure=np.ones((3, 3, 3), bool))
            for k in range(1, count + 1):
                idx = np.argwhere(labels == k)
                truth = signed_distance(gt.vertices, gt.faces, Lattice(n).points(idx))
                ok = (truth * sign < 0).mean() > 0.5  # the GT is on the side the cluster was set to
                right, wrong = right + ok, wrong + (not ok)
                print(
                    f"  delta {delta:.4f}: {kind} of {len(idx)} vertices closed at "
                    f"{np.round(idx.mean(0) * 2 / n - 1, 3).tolist()}: {'right' if ok else 'WRONG'} "
                    f"(GT sdf {truth.min():+.4f}..{truth.max():+.4f})"
                )
    print(f"after the rule: {stats(field)}; {right} right, {wrong} wrong")


if __name__ == "__main__":
    main()
