"""Loading every supported format, and a clear message for every bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import trimesh
from compact_sdf.config import SamplingConfig
from compact_sdf.data import prepare_mesh
from compact_sdf.data.load import load_mesh, mesh_from_arrays, mesh_hash
from compact_sdf.data.validate import require_valid, validate_mesh
from compact_sdf.errors import InputError

CFG = SamplingConfig()


def codes(mesh: trimesh.Trimesh, cfg: SamplingConfig = CFG) -> dict[str, bool]:
    return {p.code: p.fatal for p in validate_mesh(mesh, cfg, "m").problems}


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".stl", ".off", ".glb"])
def test_every_format_loads_the_same_closed_mesh(tmp_path: Path, shared_meshes: Path, suffix: str) -> None:
    knight = load_mesh(shared_meshes / "knight_small.ply")
    path = tmp_path / f"knight{suffix}"
    knight.export(path)
    mesh = load_mesh(path)
    assert len(mesh.faces) == 1000
    assert mesh.is_watertight  # STL/OBJ split vertices are merged again
    assert validate_mesh(mesh, CFG, "knight").ok


def test_gltf_scene_is_flattened_with_transforms(tmp_path: Path) -> None:
    scene = trimesh.Scene()
    scene.add_geometry(
        trimesh.creation.box(), transform=trimesh.transformations.translation_matrix([3, 0, 0])
    )
    scene.add_geometry(trimesh.creation.icosphere(subdivisions=1))
    path = tmp_path / "two.gltf"
    scene.export(path)
    mesh = load_mesh(path)
    assert len(mesh.faces) == 12 + 80
    assert mesh.bounds[1][0] == pytest.approx(3.5)
    assert codes(mesh) == {"several_components": False}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v 0 0 0\nv 1 0 0\nv 0 1\nf 1 2 3\n", "bad.obj line 3: a vertex needs 3 numbers, got 'v 0 1'"),
        ("v 0 0 0\nv 1 0 0\nv 0 x 0\nf 1 2 3\n", "bad.obj line 3: a vertex needs 3 numbers"),
        (
            "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n",
            "line 4: face refers to vertex '9' but the file defines 3 vertices",
        ),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", "line 4: a face needs at least 3 vertices"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 a 3\n", "line 4: face refers to vertex 'a'"),
    ],
)
def test_broken_obj_lines_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.obj"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)):
        load_mesh(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("photo.ply", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "photo.ply: not a readable PLY mesh"),
        ("scan.glb", b"not a glb at all" * 20, "scan.glb: not a readable GLB mesh"),
        ("notes.stl", b"hello, this is text\n", "notes.stl: the file holds no triangles"),
        ("empty.obj", b"# only a comment\n", "empty.obj: the file holds no triangles"),
        ("points.ply", b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
         b"property float z\nend_header\n0 0 0\n1 1 1\n", "points.ply: the file holds a PointCloud"),
    ],
)  # fmt: skip
def test_non_mesh_files_fail_cleanly(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(message)):
        load_mesh(path)


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="mesh file not found"):
        load_mesh(tmp_path / "nope.obj")
    (tmp_path / "model.fbx").write_bytes(b"x")
    with pytest.raises(InputError, match=re.escape("unsupported mesh format '.fbx'")):
        load_mesh(tmp_path / "model.fbx")


def test_array_input_is_checked() -> None:
    box = trimesh.creation.box()
    assert mesh_from_arrays(box.vertices, box.faces).is_watertight
    with pytest.raises(InputError, match=r"vertices must have shape \(V, 3\)"):
        mesh_from_arrays(np.zeros((4, 2)), box.faces)
    with pytest.raises(InputError, match=r"faces must be triangles"):
        mesh_from_arrays(box.vertices, np.zeros((2, 4), dtype=int))
    with pytest.raises(InputError, match=r"face indices must lie in \[0, 7\]"):
        mesh_from_arrays(box.vertices, box.faces + 5)
    with pytest.raises(InputError, match="face indices must be integers"):
        mesh_from_arrays(box.vertices, box.faces.astype(float))


def test_mesh_hash_follows_geometry() -> None:
    a, b = trimesh.creation.box(), trimesh.creation.box()
    assert mesh_hash(a) == mesh_hash(b)
    b.vertices[0, 0] += 1e-9
    assert mesh_hash(a) != mesh_hash(b)


def test_clean_mesh_has_no_problems(shared_meshes: Path) -> None:
    report = validate_mesh(load_mesh(shared_meshes / "spot.ply"), CFG, "spot")
    assert report.ok and report.problems == [] and report.watertight
    assert report.format() == "spot: 2930 vertices, 5856 faces - ok"
    assert report.to_dict()["ok"] is True


def test_empty_mesh() -> None:
    report = validate_mesh(trimesh.Trimesh(), CFG, "void")
    assert [(p.code, p.fatal) for p in report.problems] == [("empty", True)]
    with pytest.raises(InputError, match="void: the mesh has no triangles"):
        require_valid(report)


def test_nan_coordinates() -> None:
    box = trimesh.creation.box()
    v = box.vertices.copy()
    v[2] = np.nan
    report = validate_mesh(mesh_from_arrays(v, box.faces), CFG, "nan")
    assert report.problems[0].message == "1 vertices have NaN or infinite coordinates"
    assert not report.ok


def test_degenerate_faces_warn() -> None:
    box = trimesh.creation.box()
    faces = np.vstack([box.faces, [[0, 0, 1]]])
    report = validate_mesh(trimesh.Trimesh(box.vertices, faces, process=False), CFG, "d")
    problem = next(p for p in report.problems if p.code == "degenerate_faces")
    assert problem.message == "1 faces have zero area or repeated corners" and not problem.fatal


def test_open_mesh_refused_unless_allowed(shared_meshes: Path) -> None:
    box = trimesh.creation.box()
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-1], process=False)
    report = validate_mesh(open_box, CFG, "box")
    assert report.problems[0].code == "not_watertight" and report.problems[0].fatal
    with pytest.raises(
        InputError, match=r"box: the mesh is not watertight \(3 boundary or non-manifold edges\)"
    ):
        require_valid(report)
    with pytest.raises(InputError, match="--allow-open"):
        require_valid(report)
    allowed = validate_mesh(open_box, SamplingConfig(allow_open=True), "box")
    assert allowed.ok and "winding number" in allowed.problems[0].suggestion


def test_inconsistent_winding_is_fatal() -> None:
    box = trimesh.creation.box()
    faces = box.faces.copy()
    faces[0] = faces[0][::-1]
    assert codes(trimesh.Trimesh(box.vertices, faces, process=False)) == {"winding_inconsistent": True}


def test_inverted_normals_warn() -> None:
    box = trimesh.creation.box()
    problems = validate_mesh(trimesh.Trimesh(box.vertices, box.faces[:, ::-1]), CFG, "b").problems
    assert [(p.code, p.message, p.fatal) for p in problems] == [
        ("inverted_normals", "the normals point inward (negative volume)", False)
    ]


def test_several_components_warn() -> None:
    two = trimesh.util.concatenate(
        [trimesh.creation.box(), trimesh.creation.box().apply_translation([3, 0, 0])]
    )
    problem = validate_mesh(two, CFG, "two").problems[0]
    assert problem.message == "the mesh has 2 separate parts" and not problem.fatal


def test_too_many_faces() -> None:
    report = validate_mesh(trimesh.creation.box(), SamplingConfig(max_faces=10), "box")
    assert report.problems[0].message == "12 faces exceed the limit of 10"
    with pytest.raises(InputError, match=r"raise sampling\.max_faces"):
        require_valid(report)


def test_prepare_mesh_refuses_before_sampling(tmp_path: Path, shared_meshes: Path) -> None:
    with pytest.raises(InputError, match="bunny_open_scan: the mesh is not watertight"):
        prepare_mesh(shared_meshes / "bunny_open_scan.ply", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_stray_vertices_are_dropped_and_forward_face_references_allowed(tmp_path: Path) -> None:
    path = tmp_path / "late.obj"
    path.write_text("f 1 2 3\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 50 50 50\n")
    mesh = load_mesh(path)
    assert len(mesh.vertices) == 3 and mesh.bounds[1].max() == 1.0
