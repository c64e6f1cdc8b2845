"""A reproducible collection of many watertight shapes, with no download.

The procedural families of ``families.py`` (fixed seeds: member ``i`` of family ``f`` draws its
parameters from ``default_rng([seed, f, i])``, so adding members or families never changes
existing ones) plus any watertight meshes found in an optional folder (``../shared/meshes`` on
the development machines). ``write_collection`` stores every mesh as a PLY with a
``collection.json`` manifest (family, parameters, content hash); a second call with the same
settings reuses files whose hash still matches, so the folder doubles as the mesh cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from compact_sdf.atomic import atomic_write, atomic_write_bytes
from compact_sdf.data.families import FAMILIES
from compact_sdf.data.load import load_mesh, mesh_hash

MANIFEST = "collection.json"
GENERATOR_VERSION = 1  # bump when a family's construction changes


@dataclass
class CollectionShape:
    name: str
    family: str  # a procedural family, or "scan" for a mesh read from a folder
    mesh: trimesh.Trimesh
    params: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def hash(self) -> str:
        return mesh_hash(self.mesh)


def family_member(family: str, index: int, seed: int = 0) -> CollectionShape:
    """Member ``index`` of ``family``: its parameters depend only on (seed, family, index)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family '{family}'; choose one of: {', '.join(FAMILIES)}")
    make_params, make_solid = FAMILIES[family]
    rng = np.random.default_rng([seed, list(FAMILIES).index(family), index])
    params = make_params(rng)
    out = make_solid(params).to_mesh()
    vertices = np.asarray(out.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(out.tri_verts, dtype=np.int64)
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    return CollectionShape(f"{family}_{index:02d}", family, mesh, params)


def procedural_shapes(
    per_family: int = 8, seed: int = 0, families: list[str] | None = None
) -> list[CollectionShape]:
    return [family_member(f, i, seed) for f in families or list(FAMILIES) for i in range(per_family)]


def folder_shapes(folder: str | Path) -> list[CollectionShape]:
    """Every watertight mesh file in ``folder`` (open ones, such as a raw scan, are left out)."""
    shapes = []
    for path in sorted(Path(folder).glob("*.ply")):
        mesh = load_mesh(path)
        if mesh.is_watertight:
            shapes.append(CollectionShape(path.stem, "scan", mesh, source=str(path)))
    return shapes


def build_collection(
    per_family: int = 8, seed: int = 0, extra: str | Path | None = None, limit: int | None = None
) -> list[CollectionShape]:
    """Every family's members and the folder's meshes, interleaved round-robin.

    Round ``i`` holds member ``i`` of each family and the ``i``-th folder mesh, so any prefix mixes
    all families; ``limit`` keeps a prefix (the collection for 5 shapes is a prefix of the one for 50).
    """
    groups = [[family_member(f, i, seed) for i in range(per_family)] for f in FAMILIES]
    if extra is not None:
        groups.append(folder_shapes(extra))
    rounds = max(len(g) for g in groups)
    shapes = [g[i] for i in range(rounds) for g in groups if i < len(g)]
    return shapes[:limit] if limit is not None else shapes


def write_collection(shapes: list[CollectionShape], out: str | Path, seed: int = 0) -> Path:
    """Write ``<name>.ply`` per shape (skipping files whose stored hash matches) and the manifest.

    The manifest keeps the entries of shapes written earlier to the same folder (a smaller
    collection written after a larger one does not hide the larger one's files).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    old = read_manifest(out) if (out / MANIFEST).exists() else {}
    known = {s["name"]: s for s in old.get("shapes", [])}
    entries = []
    for shape in shapes:
        path = out / f"{shape.name}.ply"
        digest = shape.hash
        if not (path.exists() and known.get(shape.name, {}).get("hash") == digest):
            atomic_write(path, lambda tmp, m=shape.mesh: m.export(tmp))
        entries.append(
            {"name": shape.name, "family": shape.family, "params": shape.params, "hash": digest}
            | ({"source": shape.source} if shape.source else {})
        )
    fresh = {e["name"] for e in entries}
    kept = [
        e for e in old.get("shapes", []) if e["name"] not in fresh and (out / f"{e['name']}.ply").exists()
    ]
    manifest = {"generator_version": GENERATOR_VERSION, "seed": seed, "shapes": kept + entries}
    return atomic_write_bytes(out / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())


def read_manifest(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / MANIFEST).read_text())
