"""The parts of a written reconstruction against its source: faces, enclosed volume, distance.

For a mesh the backend wrote (``compact-sdf extract``, ``bench/thin_parts.py --save-dir``; .ply
or .ply.gz) and the mesh it reconstructs, one row per connected part: faces, genus, the enclosed
volume (negative: an inward-facing shell, a void) and the mean and largest distance of its
vertices to the source's surface, all relative to the source's longest bounding-box side. Tells
a real fragment (on the surface) from an artefact (off it) without the model.

    .venv/bin/python bench/mesh_parts.py featuretype.ply.gz ../shared/meshes/featuretype.ply
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import numpy as np
import trimesh


def read_written(path: Path) -> trimesh.Trimesh:
    """A reconstruction as written, gzipped or not (the type from the name without .gz)."""
    from compact_sdf.data.load import load_mesh

    if path.suffix != ".gz":
        return load_mesh(path)
    kind = Path(path.stem).suffix.lstrip(".")
    return trimesh.load(io.BytesIO(gzip.decompress(path.read_bytes())), file_type=kind, force="mesh")


def main() -> None:
    from compact_sdf.data.groundtruth import signed_distance
    from compact_sdf.data.load import load_mesh
    from compact_sdf.surface_figures import shape_stats

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mesh", type=Path)
    p.add_argument("source", type=Path)
    args = p.parse_args()
    mesh = read_written(args.mesh)
    source = load_mesh(args.source)
    extent = float(source.extents.max())
    parts = sorted(mesh.split(only_watertight=False), key=lambda part: -len(part.faces))
    print(f"{args.mesh.name}: {len(parts)} parts, distances and volumes relative to the extent {extent:.4g}")
    print("| part | faces | genus | volume / extent^3 | mean / max distance / extent |")
    print("|---|---|---|---|---|")
    for k, part in enumerate(parts):
        d = np.abs(signed_distance(source.vertices, source.faces, np.asarray(part.vertices)))
        print(
            f"| {k} | {len(part.faces)} | {shape_stats(part)['genus']} | {part.volume / extent**3:+.3g} | "
            f"{d.mean() / extent:.4f} / {d.max() / extent:.4f} |"
        )


if __name__ == "__main__":
    main()
