"""Thin parts and holes: area, genus and components of a model's fused reconstructions vs the source.

Cheaper than ``bench/fidelity.py`` (no sample metrics, the default fusion only), to compare
presets: all in the model's normalised units, the ground truth normalised with the model's
stored placement of the shape.

"Lattice genus" is the genus of the ground truth's own signed distance sampled on a lattice and
meshed by the same marching cubes: the topology that lattice can resolve at all (a plate one
voxel thick comes back with holes punched through, a gap under two voxels closes). It is given
for the extraction lattice (N) and for the model's training lattice (``sampling.fine_cells``,
where s_o gets its samples); it is cached under out/bench/thin_parts/ per mesh and lattice.

    .venv/bin/python bench/thin_parts.py --model DIR --meshes tray_bottom hand --resolution 256
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
MESHES = REPO.parent / "shared" / "meshes"
CACHE = REPO / "out" / "bench" / "thin_parts"


def lattice_genus(gt, cells: int, key: str) -> int | None:
    """Genus of the ground truth's signed distance on a lattice of ``cells`` per side (cached)."""
    from compact_sdf.data.groundtruth import signed_distance
    from compact_sdf.evaluate import shape_stats
    from compact_sdf.extract_dense import mesh_volume
    from compact_sdf.lattice import Lattice

    path = CACHE / f"{key}_{cells}.json"
    if path.exists():
        return json.loads(path.read_text())["genus"]
    side = Lattice(cells).side
    points = Lattice(cells).points(np.indices((side,) * 3).reshape(3, -1).T)
    sdf = signed_distance(gt.vertices, gt.faces, points).reshape((side,) * 3)
    genus = shape_stats(mesh_volume(sdf, block=64).to_trimesh())["genus"]
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"genus": genus}))
    return genus


def main() -> None:
    from compact_sdf.checkpoint import load_model
    from compact_sdf.data.load import load_mesh, mesh_hash
    from compact_sdf.evaluate import shape_stats
    from compact_sdf.extract import extract_shape
    from compact_sdf.metrics import normalized

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--meshes", nargs="+", required=True)
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument(
        "--mesh-dir", type=Path, default=MESHES, help="where <name>.ply lie (default: ../shared/meshes)"
    )
    args = p.parse_args()
    torch.set_num_threads(1)
    loaded = load_model(args.model)
    cfg = replace(loaded.config.extract, resolution=args.resolution)
    fine = loaded.config.sampling.fine_cells
    n = args.resolution
    print(
        f"model {args.model} ({loaded.config.preset}), N = {n}, fusion {cfg.fusion}, training lattice {fine}"
    )
    print()
    print(
        f"| shape | GT area | GT genus | lattice genus at {fine} / {n} | area % | genus | parts | manifold |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.meshes:
        source = load_mesh(args.mesh_dir / f"{name}.ply")
        norm = loaded.shapes[loaded.shape_index(name)].normalization
        gt_mesh = normalized(source, norm)
        key = f"{name}_{mesh_hash(source)[:12]}"
        resolved = [lattice_genus(gt_mesh, cells, key) for cells in (fine, n)]
        gt = shape_stats(gt_mesh)
        got = shape_stats(normalized(extract_shape(loaded, name, cfg).to_trimesh(), norm))
        print(
            f"| {name} | {gt['area']:.3f} | {gt['genus']} | {resolved[0]} / {resolved[1]} | "
            f"{100 * (got['area'] / gt['area'] - 1):+.1f} | {got['genus']} | {got['components']} | "
            f"{got['manifold']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
