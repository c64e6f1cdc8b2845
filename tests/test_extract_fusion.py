"""Sparse fused extraction: equal to the dense definition, accurate on analytic fields, fuses right."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from compact_sdf.config import ExtractConfig
from compact_sdf.errors import CompactSDFError, InputError
from compact_sdf.extract import extract_field, level_sizes
from compact_sdf.extract_dense import dense_mesh, mesh_volume
from compact_sdf.mesh import MeshArrays, save_mesh
from scipy.spatial import cKDTree


def sphere(radius: float, center: tuple[float, float, float] = (0.0, 0.0, 0.0)):
    c = torch.tensor(center)
    return lambda x: (x - c).norm(dim=-1) - radius


def box(half: float):
    def fn(x: torch.Tensor) -> torch.Tensor:
        q = x.abs() - half
        return q.clamp(min=0).norm(dim=-1) + q.max(dim=-1).values.clamp(max=0)

    return fn


def wobbly(x: torch.Tensor) -> torch.Tensor:
    return x.norm(dim=-1) - 0.5 + 0.012 * torch.sin(23 * x[:, 0]) * torch.cos(17 * x[:, 1])


def thin_plate(x: torch.Tensor) -> torch.Tensor:
    """A plate 0.016 thick (between the vertices of the coarse levels) with a ball beside it."""
    plate = torch.maximum((x[:, 2] - 0.1).abs() - 0.008, (x[:, :2].abs() - 0.6).max(dim=-1).values)
    return torch.minimum(plate, sphere(0.07, (0.4, -0.5, -0.5))(x))


def _canonical_faces(faces: np.ndarray) -> np.ndarray:
    start = np.argmin(faces, axis=1)
    rows = np.arange(len(faces))
    rolled = np.stack([faces[rows, (start + k) % 3] for k in range(3)], axis=1)
    return np.unique(rolled, axis=0)


def assert_same_mesh(a: MeshArrays, b: MeshArrays, tol: float) -> None:
    """Same vertices (within tol) and the same triangles, in any order."""
    assert len(a.vertices) == len(b.vertices) and len(a.faces) == len(b.faces)
    dist, match = cKDTree(b.vertices).query(a.vertices)
    assert dist.max() <= tol
    assert len(np.unique(match)) == len(match)
    assert np.array_equal(_canonical_faces(match[a.faces]), _canonical_faces(b.faces))


@pytest.mark.parametrize("resolution", [64, 96])
@pytest.mark.parametrize(
    ("gen", "ovf"),
    [(sphere(0.5), wobbly), (thin_plate, None), (box(0.45), sphere(0.55))],
    ids=["sphere+wobbly", "thin-plate", "box+sphere"],
)
def test_sparse_equals_dense(resolution: int, gen, ovf) -> None:
    cfg = ExtractConfig(resolution=resolution, band=3)
    assert len(level_sizes(resolution, cfg.coarse_cells)) >= 3  # the hierarchy is really used
    sparse = extract_field(gen, ovf, cfg)
    dense = dense_mesh(gen, cfg, ovf_fn=ovf)
    assert len(sparse.faces) > 100
    assert_same_mesh(sparse, dense, tol=1e-5)


def test_sparse_evaluates_band_only() -> None:
    """s_o runs on far fewer points than the lattice holds (the point of being sparse)."""
    calls = {"gen": 0, "ovf": 0}

    def counted(name, fn):
        def wrapped(x: torch.Tensor) -> torch.Tensor:
            calls[name] += len(x)
            return fn(x)

        return wrapped

    cfg = ExtractConfig(resolution=128, band=3)
    extract_field(counted("gen", sphere(0.5)), counted("ovf", wobbly), cfg)
    assert calls["ovf"] < 0.1 * 129**3
    assert calls["gen"] < 0.1 * 129**3


def _hausdorff_to_surface(mesh: MeshArrays, exact, surface_points: np.ndarray) -> float:
    to_surface = exact(torch.from_numpy(mesh.vertices)).abs().max().item()
    dense = mesh.to_trimesh().sample(200_000, return_index=False, seed=0)
    to_mesh = cKDTree(dense).query(surface_points)[0].max()
    return max(to_surface, float(to_mesh))


def test_sphere_and_box_within_a_voxel() -> None:
    n = 64
    voxel = 2.0 / n
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(5000, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    mesh = extract_field(sphere(0.6), None, ExtractConfig(resolution=n))
    assert _hausdorff_to_surface(mesh, sphere(0.6), 0.6 * dirs) < voxel
    assert np.allclose(
        mesh.normals, mesh.vertices / np.linalg.norm(mesh.vertices, axis=1, keepdims=True), atol=0.05
    )

    cube = trimesh.creation.box(extents=(0.9, 0.9, 0.9))
    mesh = extract_field(box(0.45), None, ExtractConfig(resolution=n))
    assert _hausdorff_to_surface(mesh, box(0.45), cube.sample(5000, seed=1)) < voxel
    tm = mesh.to_trimesh()
    assert tm.is_watertight and tm.volume > 0  # closed and outward-facing


def test_fusion_uses_generalization_outside_band() -> None:
    """s_o says radius 0.52 plus a far blob; the fused mesh keeps the first and drops the blob."""
    gen = sphere(0.5)
    blob = sphere(0.08, (0.75, 0.75, 0.75))

    def ovf(x: torch.Tensor) -> torch.Tensor:
        return torch.minimum(sphere(0.52)(x), blob(x))

    cfg = ExtractConfig(resolution=64, band=3)
    fused = extract_field(gen, ovf, cfg)
    radii = np.linalg.norm(fused.vertices, axis=1)
    assert np.abs(radii - 0.52).max() < 0.01  # s_o inside the band
    only_gen = extract_field(gen, None, cfg)
    assert np.abs(np.linalg.norm(only_gen.vertices, axis=1) - 0.5).max() < 0.01
    only_ovf = dense_mesh(ovf, cfg)
    assert (np.linalg.norm(only_ovf.vertices, axis=1) > 1.0).sum() > 50  # the blob exists in s_o

    narrow = extract_field(gen, ovf, ExtractConfig(resolution=64, band=0))
    # With a band of 0 layers s_o's surface (0.625 voxels away) is partly cut off by s_g outside B.
    assert not np.allclose(np.sort(narrow.vertices, axis=0), np.sort(fused.vertices, axis=0))


def test_blocking_does_not_change_the_mesh() -> None:
    lat = np.linspace(-1, 1, 49, dtype=np.float32)
    x, y, z = np.meshgrid(lat, lat, lat, indexing="ij")
    volume = (np.sqrt(x**2 + y**2 + z**2) - 0.7 + 0.05 * np.sin(9 * x)).astype(np.float32)
    assert_same_mesh(mesh_volume(volume, block=7), mesh_volume(volume), tol=1e-5)


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".glb"])
def test_save_mesh_formats(tmp_path, suffix: str) -> None:
    mesh = extract_field(sphere(0.5), None, ExtractConfig(resolution=24))
    path = save_mesh(mesh, tmp_path / f"out{suffix}")
    back = trimesh.load(path, force="mesh")
    assert len(back.faces) == len(mesh.faces)
    assert np.allclose(back.bounds, [[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]], atol=0.02)


def test_user_errors() -> None:
    mesh = extract_field(sphere(0.5), None, ExtractConfig(resolution=16))
    with pytest.raises(InputError, match="use one of"):
        save_mesh(mesh, "out.stl")
    with pytest.raises(InputError, match="band"):
        extract_field(sphere(0.5), None, ExtractConfig(resolution=16, band=-1))
    empty = extract_field(sphere(5.0), None, ExtractConfig(resolution=16))
    assert len(empty.faces) == 0
    with pytest.raises(CompactSDFError, match="empty"):
        save_mesh(empty, "out.ply")
