"""Thin parts and holes: area, genus and components of a model's fused reconstructions vs the source.

Cheaper than ``bench/fidelity.py`` (no sample metrics, the default fusion only), to compare
presets: all in the model's normalised units, the ground truth normalised with the model's
stored placement of the shape.

    .venv/bin/python bench/thin_parts.py --model DIR --meshes tray_bottom hand --resolution 256
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

MESHES = Path(__file__).resolve().parents[2] / "shared" / "meshes"


def main() -> None:
    from compact_sdf.checkpoint import load_model
    from compact_sdf.data.load import load_mesh
    from compact_sdf.evaluate import shape_stats
    from compact_sdf.extract import extract_shape
    from compact_sdf.metrics import normalized

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--meshes", nargs="+", required=True)
    p.add_argument("--resolution", type=int, default=256)
    args = p.parse_args()
    torch.set_num_threads(1)
    loaded = load_model(args.model)
    cfg = replace(loaded.config.extract, resolution=args.resolution)
    print(f"model {args.model} ({loaded.config.preset}), N = {args.resolution}, fusion {cfg.fusion}\n")
    print("| shape | GT area | GT genus | area % | genus | parts | manifold |")
    print("|---|---|---|---|---|---|---|")
    for name in args.meshes:
        norm = loaded.shapes[loaded.shape_index(name)].normalization
        gt = shape_stats(normalized(load_mesh(MESHES / f"{name}.ply"), norm))
        got = shape_stats(normalized(extract_shape(loaded, name, cfg).to_trimesh(), norm))
        print(
            f"| {name} | {gt['area']:.3f} | {gt['genus']} | {100 * (got['area'] / gt['area'] - 1):+.1f} | "
            f"{got['genus']} | {got['components']} | {got['manifold']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
