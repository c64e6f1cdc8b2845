"""Sparse fused extraction: equal to the dense definition, accurate on analytic fields, fuses right."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from compact_sdf.config import ExtractConfig
from compact_sdf.errors import CompactSDFError, InputError
from compact_sdf.extract.dense import dense_mesh, mesh_volume, speck_volume
from compact_sdf.extract.fusion import extract_field
from compact_sdf.extract.manifold import defects, drop_duplicate_faces
from compact_sdf.extract.mesh import MeshArrays, save_mesh
from compact_sdf.extract.search import find_surface, level_sizes
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


def steep_plate(x: torch.Tensor) -> torch.Tensor:
    """The thin plate with gradient 4: breaks the search's assumed bound (L = 1.5)."""
    return 4.0 * thin_plate(x)


@pytest.mark.parametrize("resolution", [64, 96])
@pytest.mark.parametrize("fusion", ["paper", "distance"])
@pytest.mark.parametrize(
    ("gen", "ovf"),
    [(sphere(0.5), wobbly), (thin_plate, None), (box(0.45), sphere(0.55)), (steep_plate, wobbly)],
    ids=["sphere+wobbly", "thin-plate", "box+sphere", "steep-plate+wobbly"],
)
def test_sparse_equals_dense(resolution: int, fusion: str, gen, ovf) -> None:
    cfg = ExtractConfig(resolution=resolution, band=3, fusion=fusion)
    assert len(level_sizes(resolution, cfg.coarse_cells)) >= 3  # the hierarchy is really used
    sparse = extract_field(gen, ovf, cfg, band_width=0.05)
    dense = dense_mesh(gen, cfg, ovf_fn=ovf, band_width=0.05)
    assert len(sparse.faces) > 100
    assert_same_mesh(sparse, dense, tol=1e-5)
    assert defects(sparse.faces).manifold


def test_steep_field_widens_the_bound() -> None:
    """Gradient 4 against an assumed 1.5: the measured slope widens the bound, no surface is lost."""
    cfg = ExtractConfig(resolution=64)
    surface = find_surface(steep_plate, cfg, "cpu")
    assert surface.lipschitz >= 4.0
    assert find_surface(thin_plate, cfg, "cpu").lipschitz == cfg.lipschitz  # a distance field: as set
    assert len(extract_field(steep_plate, None, cfg).faces) == len(dense_mesh(steep_plate, cfg).faces)


def test_sparse_evaluates_band_only() -> None:
    """s_o runs on far fewer points than the lattice holds (the point of being sparse)."""
    calls = {"gen": 0, "ovf": 0}

    def counted(name, fn):
        def wrapped(x: torch.Tensor) -> torch.Tensor:
            calls[name] += len(x)
            return fn(x)

        return wrapped

    cfg = ExtractConfig(resolution=128, band=3)
    extract_field(counted("gen", sphere(0.5)), counted("ovf", wobbly), cfg, band_width=0.03)
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

    cfg = ExtractConfig(resolution=64, band=3, fusion="paper")
    fused = extract_field(gen, ovf, cfg)
    radii = np.linalg.norm(fused.vertices, axis=1)
    assert np.abs(radii - 0.52).max() < 0.01  # s_o inside the band
    only_gen = extract_field(gen, None, cfg)
    assert np.abs(np.linalg.norm(only_gen.vertices, axis=1) - 0.5).max() < 0.01
    only_ovf = dense_mesh(ovf, cfg)
    assert (np.linalg.norm(only_ovf.vertices, axis=1) > 1.0).sum() > 50  # the blob exists in s_o

    narrow = extract_field(gen, ovf, ExtractConfig(resolution=64, band=0, fusion="paper"))
    # With a band of 0 layers s_o's surface (0.625 voxels away) is partly cut off by s_g outside B.
    assert not np.allclose(np.sort(narrow.vertices, axis=0), np.sort(fused.vertices, axis=0))
    # The distance fusion (band |s_g| <= 0.05 here) drops the blob too: |s_g| ~ 0.8 there.
    distance = extract_field(gen, ovf, ExtractConfig(resolution=64), band_width=0.05)
    assert np.abs(np.linalg.norm(distance.vertices, axis=1) - 0.52).max() < 0.01


def finned_sphere(x: torch.Tensor) -> torch.Tensor:
    """s_o of a sphere (r 0.5) with a thin fin (0.02 thick, out to r 0.62) that s_g does not have."""
    r_xy = x[:, :2].norm(dim=-1)
    fin = torch.maximum(x[:, 2].abs() - 0.01, r_xy - 0.62)
    return torch.minimum(sphere(0.5)(x), fin)


@pytest.mark.parametrize("resolution", [128, 160])
def test_thin_wall_missed_by_s_g_kept_by_distance_fusion(resolution: int) -> None:
    """A fin s_g misses (|s_g| <= 0.12 on it): the distance band keeps it at any N; the paper band
    (3 voxels, Chebyshev, around the s_g surface: at most 3 * sqrt(3) voxels away) cuts it off."""
    gen, band_width = sphere(0.5), 0.17  # width 0.75 x 0.17 = 0.1275
    rim = 0.615  # the fin's edge is at 0.62; the sphere's equator at 0.5

    def fin_reach(mesh: MeshArrays) -> float:
        flat = np.abs(mesh.vertices[:, 2]) < 0.02
        return float(np.linalg.norm(mesh.vertices[flat, :2], axis=1).max())

    distance = extract_field(gen, finned_sphere, ExtractConfig(resolution=resolution), band_width=band_width)
    paper = extract_field(gen, finned_sphere, ExtractConfig(resolution=resolution, fusion="paper"))
    assert fin_reach(distance) > rim
    assert fin_reach(paper) < 0.5 + (3 * np.sqrt(3) + 1) * 2.0 / resolution < rim
    assert defects(distance.faces).manifold and distance.to_trimesh().is_watertight


def test_specks_below_a_training_cell_are_dropped() -> None:
    """s_o wrong at one lattice vertex inside the body (the shells measured on trained models: 6
    vertices at a grid vertex) leaves a closed speck; the fusion drops parts enclosing less than one
    cell of the training lattice or of the extraction lattice, whichever is larger, keeps a real
    small part (a bead on the surface), and the sparse extraction still equals the dense one."""
    speck_at = torch.tensor([14 / 32, 5 / 32, 0.0])  # a lattice vertex at N = 64, 0.036 inside s_g
    bead = sphere(0.035, (0.0, 0.0, 0.53))

    def ovf(x: torch.Tensor) -> torch.Tensor:
        body = torch.minimum(sphere(0.5)(x), bead(x))
        return torch.maximum(body, 0.006 - (x - speck_at).norm(dim=-1))

    cfg = ExtractConfig(resolution=64)

    def parts(min_volume: float) -> int:
        mesh = extract_field(sphere(0.5), ovf, cfg, band_width=0.12, min_volume=min_volume)
        dense = dense_mesh(sphere(0.5), cfg, ovf_fn=ovf, band_width=0.12, min_volume=min_volume)
        assert_same_mesh(mesh, dense, tol=1e-5)
        return len(mesh.to_trimesh().split(only_watertight=False))

    assert parts(0.0) == 2  # the body with its bead, and the speck
    assert parts(speck_volume(128, 128)) == 1
    # a training lattice finer than the extraction's (the paper's 512): the speck is more than one
    # training cell, but a single vertex of this N = 64 lattice, less than one of its voxels
    assert parts(speck_volume(512, 512)) == 2
    assert parts(speck_volume(512, 64)) == 1
    assert parts(1e-3) == 1  # a huge threshold drops nothing that touches the body either


@pytest.mark.parametrize("resolution", [32, 64])
def test_zeros_on_the_lattice_give_a_manifold_mesh(resolution: int) -> None:
    """A plate whose faces and rim hit lattice vertices exactly (values 0 there): before the zero
    gap in ``march``, block merging fused vertices of different edges into a duplicated face."""

    def plate(x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(x[:, 2].abs() - 0.03125, (x[:, :2].abs() - 0.5).max(dim=-1).values)

    cfg = ExtractConfig(resolution=resolution, block_cells=8)
    for mesh in (extract_field(plate, None, cfg), dense_mesh(plate, cfg)):
        tm = mesh.to_trimesh()
        assert defects(mesh.faces).manifold and tm.is_watertight
        assert tm.volume == pytest.approx(1.0 * 1.0 * 0.0625, rel=0.2)  # one voxel thick at N = 32


def test_manifold_guard() -> None:
    """Duplicates are dropped (a fold listed both ways entirely); save_mesh refuses an overfull edge."""
    faces = np.array([[0, 1, 2], [1, 2, 0], [2, 3, 4], [4, 3, 2], [5, 6, 7]])
    assert defects(faces).duplicate_faces == 2
    assert drop_duplicate_faces(faces).tolist() == [[0, 1, 2], [5, 6, 7]]
    fan = np.array([[0, 1, 2], [0, 1, 3], [1, 0, 4]])
    assert defects(fan).overfull_edges == 1
    verts = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    with pytest.raises(CompactSDFError, match="non-manifold"):
        save_mesh(MeshArrays(verts, fan, verts.copy()), "out.ply")


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
