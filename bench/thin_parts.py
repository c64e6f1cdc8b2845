"""Thin parts and holes: area, genus and components of a model's fused reconstructions vs the source.

Cheaper than ``bench/fidelity.py`` (no sample metrics, the default fusion only), to compare
presets: all in the model's normalised units, the ground truth normalised with the model's
stored placement of the shape.

"Lattice genus" is the genus of the ground truth's own signed distance sampled on a lattice and
meshed by the same marching cubes: the topology that lattice can resolve at all (a plate one
voxel thick comes back with holes punched through, a gap under two voxels closes). It is given
for the extraction lattice (N) and for the model's training lattice (``sampling.fine_cells``,
where s_o gets its samples); it is cached under out/bench/thin_parts/ per mesh and lattice.
On the training lattice it is also given with the surface moved in and out by ``--margin`` of a
cell (a quarter by default, about s_o's RMS error): where that changes the genus, the topology
hangs on single lattice vertices whose distance is below the error the branch trains to.

    .venv/bin/python bench/thin_parts.py --model DIR --meshes tray_bottom hand --resolution 256 [--cd 200000]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from _harness import MESHES, OUT, open_model

CACHE = OUT / "thin_parts"


def lattice_genus(gt, cells: int, key: str, levels: tuple[float, ...] = (0.0,)) -> list[int | None]:
    """Genus of the ground truth's signed distance on a lattice of ``cells`` per side, meshed at
    each of ``levels`` (0 = the surface; +-d = the surface moved out / in by d). Cached per level."""
    from compact_sdf.data.groundtruth import signed_distance
    from compact_sdf.extract.dense import mesh_volume
    from compact_sdf.extract.lattice import Lattice
    from compact_sdf.surface_figures import shape_stats

    paths = [CACHE / (f"{key}_{cells}.json" if lv == 0 else f"{key}_{cells}_{lv:+.5f}.json") for lv in levels]
    if not all(path.exists() for path in paths):
        side = Lattice(cells).side
        points = Lattice(cells).points(np.indices((side,) * 3).reshape(3, -1).T)
        sdf = signed_distance(gt.vertices, gt.faces, points).reshape((side,) * 3)
        CACHE.mkdir(parents=True, exist_ok=True)
        for level, path in zip(levels, paths, strict=True):
            if not path.exists():
                genus = shape_stats(mesh_volume(sdf - level, block=64).to_trimesh())["genus"]
                path.write_text(json.dumps({"genus": genus}))
    return [json.loads(path.read_text())["genus"] for path in paths]


def main() -> None:
    from compact_sdf.data.load import load_mesh, mesh_hash
    from compact_sdf.device import resolve_device
    from compact_sdf.errors import CompactSDFError
    from compact_sdf.extract.fusion import extract_shape
    from compact_sdf.metrics import evaluate_meshes, normalized
    from compact_sdf.surface_figures import shape_stats

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a model directory, or one of its states (best.pt)")
    p.add_argument("--meshes", nargs="+", required=True)
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument(
        "--mesh-dir", type=Path, default=MESHES, help="where <name>.ply lie (default: ../shared/meshes)"
    )
    p.add_argument(
        "--cd",
        type=int,
        default=0,
        metavar="SAMPLES",
        help="also score Chamfer and F@0.005 from this many surface samples (0 = off; seed 0)",
    )
    p.add_argument(
        "--no-lattice",
        action="store_true",
        help="skip the lattice genus columns (the GT's sdf on (N+1)^3 points costs minutes per mesh)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.25,
        help="also mesh the training lattice's GT at +-margin x its cell (a surface moved by about "
        "s_o's error): a genus that changes there hangs on single lattice vertices (0 = off)",
    )
    p.add_argument("--device", default="cpu", help="where the model runs: cpu, cuda or auto")
    p.add_argument("--save-dir", type=Path, help="also write each reconstruction here as <name>.ply")
    p.add_argument("--handles", choices=["keep", "close"], help="extract.handles (default: the model's)")
    p.add_argument(
        "--no-trained-region", action="store_true", help="fuse without the record of where s_o was trained"
    )
    args = p.parse_args()
    torch.set_num_threads(1)
    loaded = open_model(args.model, resolve_device(args.device))
    cfg = replace(loaded.config.extract, resolution=args.resolution)
    cfg = replace(cfg, handles=args.handles or cfg.handles, trained_region=not args.no_trained_region)
    fine = loaded.config.sampling.fine_cells
    n = args.resolution
    print(
        f"model {args.model} ({loaded.config.preset}), N = {n}, fusion {cfg.fusion}, handles {cfg.handles}, "
        f"trained region {'on' if cfg.trained_region and loaded.regions else 'off'}, "
        f"training lattice {fine}"
    )
    print()
    d = args.margin * 2.0 / fine
    levels = (0.0, -d, d) if d > 0 else (0.0,)
    margin = f" at {fine}, level -/+{d:.4f} |" if d > 0 else ""
    lattice = "" if args.no_lattice else f" lattice genus at {fine} / {n} |{margin}"
    score = " CD | F@0.005 |" if args.cd else ""
    print(f"| shape | GT area | GT genus |{lattice} area % | genus | parts | manifold |{score}")
    print("|---" * (7 + lattice.count("|") + score.count("|")) + "|")
    for name in args.meshes:
        source = load_mesh(args.mesh_dir / f"{name}.ply")
        norm = loaded.shapes[loaded.shape_index(name)].normalization
        gt_mesh = normalized(source, norm)
        cells = ""
        if not args.no_lattice:
            key = f"{name}_{mesh_hash(source)[:12]}"
            at_fine = lattice_genus(gt_mesh, fine, key, levels)
            moved = f" {at_fine[1]} / {at_fine[2]} |" if d > 0 else ""
            cells = f" {at_fine[0]} / {lattice_genus(gt_mesh, n, key)[0]} |{moved}"
        gt = shape_stats(gt_mesh)
        try:
            mesh = extract_shape(loaded, name, cfg).to_trimesh()
        except CompactSDFError as exc:  # one shape's failure (a dead branch: no surface) is its row's
            print(f"| {name} | {gt['area']:.3f} | {gt['genus']} |{cells} {exc} |", flush=True)
            continue
        got = shape_stats(normalized(mesh, norm))
        if args.save_dir:
            args.save_dir.mkdir(parents=True, exist_ok=True)
            mesh.export(args.save_dir / f"{name}.ply")
        scored = ""
        if args.cd:
            m = evaluate_meshes(mesh, source, normalization=norm, samples=args.cd, seed=0)
            scored = f" {m['chamfer']:.3e} | {m['fscore@0.005']:.3f} |"
        print(
            f"| {name} | {gt['area']:.3f} | {gt['genus']} |{cells} "
            f"{100 * (got['area'] / gt['area'] - 1):+.1f} | {got['genus']} | {got['components']} | "
            f"{got['manifold']} |{scored}",
            flush=True,
        )


if __name__ == "__main__":
    main()
