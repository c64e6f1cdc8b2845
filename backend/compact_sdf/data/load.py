"""Read meshes from files or raw arrays into one triangle mesh, with user-readable failures.

trimesh reads every format; scenes (GLB/GLTF, multi-object OBJ) are flattened with their
transforms applied. Loading does not repair anything: NaNs, open edges and flipped faces are
left for ``validate`` to report. Vertices with identical positions are merged, because STL and
many OBJ exports split them per face and would otherwise never look watertight; vertices no
face uses are dropped, since they would distort the normalisation box.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import trimesh

from compact_sdf.errors import InputError

FORMATS = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")


def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """Load a mesh file; raise ``InputError`` for missing, unreadable or non-mesh files."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"mesh file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path.name}: unsupported mesh format '{suffix}'; use one of {', '.join(FORMATS)}")
    if suffix == ".obj":
        _check_obj(path)
    try:
        loaded = trimesh.load(path, force=None, process=False)
    except Exception as exc:  # trimesh raises many exception types for garbage input
        raise InputError(f"{path.name}: not a readable {suffix[1:].upper()} mesh ({_short(exc)})") from exc
    mesh = _as_single_mesh(loaded, path.name)
    _check_faces(np.asarray(mesh.faces), len(mesh.vertices), path.name)
    return _merged(mesh)


def mesh_from_arrays(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    """Build a mesh from (V,3) positions and (F,3) triangle indices (the add-on's upload)."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise InputError(f"vertices must have shape (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3:
        raise InputError(f"faces must be triangles with shape (F, 3), got {f.shape}")
    if f.size and not np.issubdtype(f.dtype, np.integer):
        raise InputError(f"face indices must be integers, got {f.dtype}")
    f = f.astype(np.int64)
    _check_faces(f, len(v), "the mesh")
    return _merged(trimesh.Trimesh(vertices=v, faces=f, process=False))


def mesh_hash(mesh: trimesh.Trimesh) -> str:
    """sha256 of the geometry (float64 positions + int64 faces): the cache key of a shape."""
    digest = hashlib.sha256()
    v = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
    f = np.ascontiguousarray(mesh.faces, dtype=np.int64)
    digest.update(np.asarray(v.shape + f.shape, dtype=np.int64).tobytes())
    digest.update(v.tobytes())
    digest.update(f.tobytes())
    return digest.hexdigest()


def _check_obj(path: Path) -> None:
    """Refuse OBJ lines trimesh would silently drop or misread, naming the first bad line.

    Two streaming passes (vertices, then faces) so a face may refer to a vertex defined later.
    """
    vertices = 0
    for number, parts, text in _obj_lines(path, "v"):
        if len(parts) < 4 or not all(_parses(x, float) for x in parts[1:4]):
            raise InputError(f"{path.name} line {number}: a vertex needs 3 numbers, got '{text}'")
        vertices += 1
    for number, parts, text in _obj_lines(path, "f"):
        if len(parts) < 4:
            raise InputError(f"{path.name} line {number}: a face needs at least 3 vertices, got '{text}'")
        for token in parts[1:]:
            index = token.split("/")[0]
            if not _parses(index, int) or int(index) == 0 or abs(int(index)) > vertices:
                raise InputError(
                    f"{path.name} line {number}: face refers to vertex '{index}' but the file "
                    f"defines {vertices} vertices"
                )


def _check_faces(faces: np.ndarray, vertices: int, label: str) -> None:
    """Face indices must name existing vertices (a negative one would silently wrap to another)."""
    if faces.size and (faces.min() < 0 or faces.max() >= vertices):
        raise InputError(
            f"{label}: face indices must lie in [0, {vertices - 1}], found {faces.min()}..{faces.max()}"
        )


def _obj_lines(path: Path, keyword: str) -> Iterator[tuple[int, list[str], str]]:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith(keyword):
                parts = line.split()
                if parts and parts[0] == keyword:
                    yield number, parts, line.strip()


def _as_single_mesh(loaded: object, label: str) -> trimesh.Trimesh:
    if isinstance(loaded, trimesh.Scene):
        meshes = [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh)]
        if not meshes:
            raise InputError(f"{label}: the file holds no triangles{_kinds(loaded)}")
        joined = trimesh.util.concatenate(meshes) if len(meshes) > 1 else meshes[0]
        assert isinstance(joined, trimesh.Trimesh)
        return joined
    if not isinstance(loaded, trimesh.Trimesh):
        raise InputError(f"{label}: the file holds a {type(loaded).__name__}, not a triangle mesh")
    return loaded


def _merged(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    if len(mesh.vertices) and np.isfinite(mesh.vertices).all():
        mesh.merge_vertices(merge_tex=True, merge_norm=True)
        mesh.remove_unreferenced_vertices()
    return mesh


def _kinds(scene: trimesh.Scene) -> str:
    kinds = sorted({type(g).__name__ for g in scene.geometry.values()})
    return f" (only {', '.join(kinds)})" if kinds else ""


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def _parses(text: str, kind: type[int] | type[float]) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True
