"""Blender meshes <-> triangle arrays <-> binary PLY bytes, and the per-object checks before encoding.

Meshes go to the backend in *world space* (modifiers applied, the object's full transform baked in),
so every shape of a model lives in one consistent frame; results come back in that same frame and are
re-centred on their source's origin. Stdlib (array/struct) only: the add-on never needs numpy.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass

import bmesh
import bpy
from mathutils import Matrix, Vector


@dataclass
class Triangles:
    """Flat float32 vertex coordinates (3 per vertex) and int32 triangle indices (3 per triangle)."""

    vertices: array
    faces: array

    @property
    def vertex_count(self) -> int:
        return len(self.vertices) // 3

    @property
    def face_count(self) -> int:
        return len(self.faces) // 3


@dataclass(frozen=True)
class Issue:
    """One finding about one object; ``fatal`` ones keep the object out of the job."""

    obj: str
    message: str
    fatal: bool

    @property
    def level(self) -> str:
        return "ERROR" if self.fatal else "WARNING"


def check_object(obj: bpy.types.Object, depsgraph: bpy.types.Depsgraph, allow_open: bool) -> list[Issue]:
    """Why ``obj`` cannot (fatal) or may not faithfully (warning) be encoded; checks the evaluated mesh."""
    name = obj.name
    if obj.type != "MESH":
        return [
            Issue(
                name, f"'{name}' is not a mesh ({obj.type.lower()} object): only meshes can be encoded", True
            )
        ]
    issues: list[Issue] = []
    det = obj.matrix_world.to_3x3().determinant()
    if abs(det) < 1e-12:
        return [Issue(name, f"'{name}' has zero scale on some axis: apply or fix its scale", True)]
    if det < 0:
        issues.append(
            Issue(
                name,
                f"'{name}' has a negative scale (mirrored); its faces are flipped to stay outward",
                False,
            )
        )
    if obj.modifiers:
        active = [m.name for m in obj.modifiers if m.show_viewport]
        if active:
            issues.append(
                Issue(
                    name,
                    f"'{name}' has unapplied modifiers ({', '.join(active)}): the evaluated result is sent",
                    False,
                )
            )
    bm = bmesh.new()
    try:
        bm.from_object(obj.evaluated_get(depsgraph), depsgraph)
        if not bm.faces:
            return [*issues, Issue(name, f"'{name}' has no faces: nothing to encode", True)]
        open_edges = sum(1 for e in bm.edges if not e.is_manifold)
        loose = sum(1 for v in bm.verts if not v.link_faces)
    finally:
        bm.free()
    if open_edges:
        msg = (
            f"'{name}' is not watertight ({open_edges} open or non-manifold edges): close it "
            "(Mesh > Clean Up > Fill Holes) or enable 'Allow open meshes'"
        )
        issues.append(Issue(name, msg, not allow_open))
    if loose:
        issues.append(Issue(name, f"'{name}' has {loose} loose vertices; they are ignored", False))
    return issues


def world_triangles(obj: bpy.types.Object, depsgraph: bpy.types.Depsgraph) -> Triangles:
    """The evaluated mesh of ``obj`` triangulated and in world coordinates, outward winding kept."""
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        mesh.transform(obj.matrix_world)
        mesh.calc_loop_triangles()
        verts = array("f", bytes(4 * 3 * len(mesh.vertices)))
        mesh.vertices.foreach_get("co", verts)
        faces = array("i", bytes(4 * 3 * len(mesh.loop_triangles)))
        mesh.loop_triangles.foreach_get("vertices", faces)
    finally:
        evaluated.to_mesh_clear()
    if obj.matrix_world.to_3x3().determinant() < 0:  # a mirror turns the winding inside out
        faces[1::3], faces[2::3] = faces[2::3], faces[1::3]
    return Triangles(verts, faces)


def to_ply(tris: Triangles) -> bytes:
    """Binary little-endian PLY of the triangles (what the backend's mesh upload accepts)."""
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {tris.vertex_count}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {tris.face_count}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode("ascii")
    verts = array("f", tris.vertices)
    faces = array("i", tris.faces)
    if struct.pack("=I", 1) != struct.pack("<I", 1):
        verts.byteswap()
        faces.byteswap()
    face_bytes = faces.tobytes()
    three = b"\x03"
    body = b"".join(three + face_bytes[i : i + 12] for i in range(0, len(face_bytes), 12))
    return header + verts.tobytes() + body


_PLY_TYPES = {
    "char": "b", "int8": "b", "uchar": "B", "uint8": "B", "short": "h", "int16": "h", "ushort": "H",
    "uint16": "H", "int": "i", "int32": "i", "uint": "I", "uint32": "I", "float": "f", "float32": "f",
    "double": "d", "float64": "d",
}  # fmt: skip


def from_ply(data: bytes) -> Triangles:
    """Read a triangle PLY (binary little/big endian or ASCII); raises ValueError on anything else."""
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise ValueError("not a PLY file")
    body_start = data.index(b"\n", end) + 1
    lines = data[:end].decode("ascii", "replace").splitlines()
    fmt = next((ln.split()[1] for ln in lines if ln.startswith("format")), "")
    elements: list[tuple[str, int, list[list[str]]]] = []
    for ln in lines:
        parts = ln.split()
        if parts[:1] == ["element"]:
            elements.append((parts[1], int(parts[2]), []))
        elif parts[:1] == ["property"] and elements:
            elements[-1][2].append(parts[1:])
    if fmt == "ascii":
        return _ply_ascii(data[body_start:].decode("ascii"), elements)
    if fmt not in ("binary_little_endian", "binary_big_endian"):
        raise ValueError(f"unsupported PLY format '{fmt}'")
    order = "<" if fmt == "binary_little_endian" else ">"
    return _ply_binary(data, body_start, order, elements)


def _ply_binary(
    data: bytes, pos: int, order: str, elements: list[tuple[str, int, list[list[str]]]]
) -> Triangles:
    verts = array("f")
    faces = array("i")
    for name, count, props in elements:
        if all(p[0] != "list" for p in props):
            record = struct.Struct(order + "".join(_PLY_TYPES[p[0]] for p in props))
            size = record.size * count
            if name == "vertex":
                names = [p[1] for p in props]
                ix, iy, iz = names.index("x"), names.index("y"), names.index("z")
                for row in record.iter_unpack(data[pos : pos + size]):
                    verts.extend((row[ix], row[iy], row[iz]))
            pos += size
            continue
        if name != "face" or len(props) != 1:
            raise ValueError(f"unsupported PLY element '{name}'")
        count_fmt, index_fmt = _PLY_TYPES[props[0][1]], _PLY_TYPES[props[0][2]]
        head = struct.Struct(order + count_fmt)
        index_size = struct.calcsize(index_fmt)
        tri = struct.Struct(order + count_fmt + index_fmt * 3)
        for _ in range(count):
            (n,) = head.unpack_from(data, pos)
            if n == 3:
                faces.extend(tri.unpack_from(data, pos)[1:])
            else:  # fan-triangulate polygons
                idx = struct.unpack_from(order + index_fmt * n, data, pos + head.size)
                for k in range(1, n - 1):
                    faces.extend((idx[0], idx[k], idx[k + 1]))
            pos += head.size + n * index_size
    return Triangles(verts, faces)


def _ply_ascii(text: str, elements: list[tuple[str, int, list[list[str]]]]) -> Triangles:
    rows = iter(text.splitlines())
    verts = array("f")
    faces = array("i")
    for name, count, props in elements:
        names = [p[-1] for p in props]
        for _ in range(count):
            values = next(rows).split()
            if name == "vertex":
                verts.extend(float(values[names.index(k)]) for k in ("x", "y", "z"))
            elif name == "face":
                idx = [int(v) for v in values[1 : 1 + int(values[0])]]
                for k in range(1, len(idx) - 1):
                    faces.extend((idx[0], idx[k], idx[k + 1]))
    return Triangles(verts, faces)


def bounds(tris: Triangles) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The axis-aligned bounding box (lowest, highest corner); a point at 0 for an empty mesh."""
    axes = [tris.vertices[i::3] for i in range(3)]
    lo = tuple(min(a) if len(a) else 0.0 for a in axes)
    hi = tuple(max(a) if len(a) else 0.0 for a in axes)
    return lo, hi  # type: ignore[return-value]


def centre(tris: Triangles) -> Vector:
    """Centre of the bounding box (where an object made from world-space triangles gets its origin)."""
    lo, hi = bounds(tris)
    return Vector([(a + b) / 2 for a, b in zip(lo, hi, strict=True)])


def new_mesh(name: str, tris: Triangles, origin: Vector | None = None) -> bpy.types.Mesh:
    """A Blender mesh from world-space triangles, shifted so ``origin`` becomes its local (0,0,0)."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(tris.vertex_count)
    mesh.vertices.foreach_set("co", tris.vertices)
    mesh.loops.add(len(tris.faces))
    mesh.loops.foreach_set("vertex_index", tris.faces)
    mesh.polygons.add(tris.face_count)
    mesh.polygons.foreach_set("loop_start", array("i", range(0, len(tris.faces), 3)))
    mesh.update(calc_edges=True)
    mesh.validate(clean_customdata=False)
    if origin is not None:
        mesh.transform(Matrix.Translation(-origin))
    mesh.shade_smooth()
    return mesh


def replace_geometry(mesh: bpy.types.Mesh, tris: Triangles, origin: Vector | None = None) -> None:
    """Swap the geometry of an existing mesh datablock (the live interpolation object keeps its identity)."""
    fresh = new_mesh(mesh.name + ".tmp", tris, origin)
    bm = bmesh.new()
    try:
        bm.from_mesh(fresh)
        bm.to_mesh(mesh)
        mesh.shade_smooth()
        mesh.update()
    finally:
        bm.free()
        bpy.data.meshes.remove(fresh)
