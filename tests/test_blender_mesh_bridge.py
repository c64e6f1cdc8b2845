"""Blender meshes to PLY bytes and back, world-space transforms, mirrored objects and per-object checks,
checked with the real bpy module and against trimesh as an independent PLY reader/writer."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from blender_harness import REPO, run_in_blender

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory, shared_meshes: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bridge")
    knight = trimesh.load(shared_meshes / "knight_small.ply")
    (root / "ascii.ply").write_bytes(knight.export(file_type="ply", encoding="ascii"))
    (root / "binary.ply").write_bytes(knight.export(file_type="ply"))
    return run_in_blender(__file__, "scenario_bridge", root / "user", root=str(root))["result"]


def test_world_space_ply_is_watertight_with_outward_winding(bridge: dict[str, Any]) -> None:
    for name in ("scaled", "mirrored"):
        mesh = trimesh.load(io.BytesIO(Path(bridge[name]["ply"]).read_bytes()), file_type="ply")
        assert mesh.is_watertight
        assert mesh.volume == pytest.approx(bridge[name]["volume"], rel=1e-4)  # positive: normals outward
        assert np.allclose(mesh.bounds, bridge[name]["bounds"], atol=1e-5)


def test_modifiers_are_applied_before_sending(bridge: dict[str, Any]) -> None:
    assert bridge["bevelled"]["faces"] > 12  # the bevel's faces, not the 12 triangles of the plain cube


def test_ply_readers_agree_with_trimesh(bridge: dict[str, Any], shared_meshes: Path) -> None:
    knight = trimesh.load(shared_meshes / "knight_small.ply")
    for kind in ("ascii", "binary"):
        got = bridge[f"read_{kind}"]
        assert got["vertices"] == len(knight.vertices) and got["faces"] == len(knight.faces)
        assert np.allclose(got["first"], knight.vertices[knight.faces[0]].tolist(), atol=1e-6)
    assert bridge["read_quads"]["faces"] == 2 * 6  # a quad cube fan-triangulates into 12 triangles


def test_new_mesh_is_recentred_on_the_origin_it_is_given(bridge: dict[str, Any]) -> None:
    made = bridge["new_mesh"]
    assert made["polygons"] == made["triangles"]
    # the scaled cube's world min corner (2, -2, -0.5) seen from the origin (3, 1, -0.5)
    assert made["min"] == pytest.approx([-1.0, -3.0, 0.0], abs=1e-6)


def test_checks_report_each_problem(bridge: dict[str, Any]) -> None:
    checks = bridge["checks"]
    assert checks["cube"] == []
    assert checks["empty"] == [["not a mesh (empty object)", True]]
    assert checks["plane"] == [["not watertight (4 open or non-manifold edges)", True]]
    assert checks["plane_allowed"] == [["not watertight (4 open or non-manifold edges)", False]]
    assert checks["flat"] == [["zero scale", True]]
    assert checks["mirrored"] == [["negative scale", False]]
    assert checks["bevelled"] == [["unapplied modifiers (Bevel)", False]]


def test_shape_names_are_safe_and_unique(tmp_path: Path) -> None:
    names = run_in_blender(__file__, "scenario_names", tmp_path / "user")["result"]
    assert names == ["My_Cube", "My_Cube_2", "x", "Suzanne.001", "shape"]


# --- runs inside Blender -------------------------------------------------------------------------

PHRASES = (
    "not a mesh (empty object)",
    "not watertight (4 open or non-manifold edges)",
    "zero scale",
    "negative scale",
    "unapplied modifiers (Bevel)",
)


def _addon() -> Any:
    """The add-on package imported from the repository as ``addon`` (no install needed for these units)."""
    sys.path.insert(0, str(REPO))
    import addon

    return addon


def scenario_bridge(root: str) -> dict[str, Any]:
    import bpy

    bridge = _addon().mesh_bridge
    out: dict[str, Any] = {}
    depsgraph = bpy.context.evaluated_depsgraph_get()

    def add_cube(name: str, **kw: Any) -> Any:
        bpy.ops.mesh.primitive_cube_add(size=2.0, location=kw.pop("location", (0, 0, 0)))
        obj = bpy.context.active_object
        obj.name = name
        for key, value in kw.items():
            setattr(obj, key, value)
        return obj

    bpy.ops.wm.read_homefile(use_empty=True)
    scaled = add_cube("scaled", location=(3, 0, 0), scale=(1, 2, 0.5))
    mirrored = add_cube("mirrored", location=(0, 5, 0), scale=(-1, 1, 1))
    bevelled = add_cube("bevelled")
    bevelled.modifiers.new("Bevel", "BEVEL")
    flat = add_cube("flat", scale=(1, 0, 1))
    bpy.ops.object.empty_add()
    empty = bpy.context.active_object
    bpy.ops.mesh.primitive_plane_add()
    plane = bpy.context.active_object
    plain = add_cube("cube")
    depsgraph = bpy.context.evaluated_depsgraph_get()

    expected = {"scaled": (8.0, [[2, -2, -0.5], [4, 2, 0.5]]), "mirrored": (8.0, [[-1, 4, -1], [1, 6, 1]])}
    for obj in (scaled, mirrored):
        path = Path(root) / f"{obj.name}.ply"
        path.write_bytes(bridge.to_ply(bridge.world_triangles(obj, depsgraph)))
        volume, bounds = expected[obj.name]
        out[obj.name] = {"ply": str(path), "volume": volume, "bounds": bounds}
    out["bevelled"] = {"faces": bridge.world_triangles(bevelled, depsgraph).face_count}

    for kind in ("ascii", "binary"):
        tris = bridge.from_ply((Path(root) / f"{kind}.ply").read_bytes())
        first = [list(tris.vertices[3 * i : 3 * i + 3]) for i in tris.faces[0:3]]
        out[f"read_{kind}"] = {"vertices": tris.vertex_count, "faces": tris.face_count, "first": first}
    quads = (
        "ply\nformat ascii 1.0\nelement vertex 8\nproperty float x\nproperty float y\nproperty float z\n"
        "element face 6\nproperty list uchar int vertex_indices\nend_header\n"
        + "".join(f"{x} {y} {z}\n" for x in (0, 1) for y in (0, 1) for z in (0, 1))
        + "4 0 1 3 2\n4 4 6 7 5\n4 0 4 5 1\n4 2 3 7 6\n4 0 2 6 4\n4 1 5 7 3\n"
    )
    out["read_quads"] = {"faces": bridge.from_ply(quads.encode()).face_count}

    tris = bridge.world_triangles(scaled, depsgraph)
    from mathutils import Vector

    made = bridge.new_mesh("made", tris, Vector((3.0, 1.0, -0.5)))
    co = [v.co for v in made.vertices]
    out["new_mesh"] = {
        "polygons": len(made.polygons),
        "triangles": tris.face_count,
        "min": [min(c[i] for c in co) for i in range(3)],
    }

    def found(obj: Any, allow_open: bool = False) -> list[list[Any]]:
        issues = bridge.check_object(obj, depsgraph, allow_open)
        return [[p, i.fatal] for i in issues for p in PHRASES if p in i.message]

    out["checks"] = {
        "cube": found(plain),
        "empty": found(empty),
        "plane": found(plane),
        "plane_allowed": found(plane, allow_open=True),
        "flat": found(flat),
        "mirrored": found(mirrored),
        "bevelled": found(bevelled),
    }
    return out


def scenario_names() -> list[str]:
    encode = _addon().scene
    taken: set[str] = set()
    return [encode.shape_name(n, taken) for n in ("My Cube", "My Cube", "_x", "Suzanne.001", "ééé")]
