"""The meshing that runs where the model runs (``on_device.py``, ``tensor_march.py``), run on the
CPU: it equals marching cubes of the dense field, puts its vertices where scikit-image does, and
its table closes every surface."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from compact_sdf.config import ExtractConfig
from compact_sdf.extract.blend import EndMemo
from compact_sdf.extract.dense import dense_fused_volume, drop_band_artifacts, mesh_volume
from compact_sdf.extract.fusion import extract_field
from compact_sdf.extract.lattice import CORNERS
from compact_sdf.extract.manifold import defects
from compact_sdf.extract.mesh import MeshArrays
from compact_sdf.extract.on_device import LatticeMemo, _region_mask, chosen, fused_mesh
from compact_sdf.extract.tensor_march import march_cells, triangles
from compact_sdf.trained_region import TrainedRegion
from scipy.spatial import cKDTree
from test_blend import ENDS, WIDTH, fields
from test_extract_fusion import assert_same_mesh, box, sphere, steep_plate, thin_plate, wobbly

TENSORS = ExtractConfig(meshing="tensors")
CASES = [(sphere(0.5), wobbly), (thin_plate, None), (box(0.45), sphere(0.55)), (steep_plate, wobbly)]
IDS = ["sphere+wobbly", "thin-plate", "box+sphere", "steep-plate+wobbly"]


def march_volume(volume: np.ndarray) -> MeshArrays:
    """``tensor_march`` on every cell of a whole (N+1)^3 volume."""
    n = volume.shape[0] - 1
    cells = np.indices((n,) * 3).reshape(3, -1).T
    values = np.stack([volume[tuple((cells + o).T)] for o in CORNERS], axis=1)
    verts, faces = march_cells(torch.from_numpy(cells), torch.from_numpy(values), n)
    return MeshArrays.from_lattice(verts, faces, n)


def same_vertices(a: MeshArrays, b: MeshArrays, tol: float) -> None:
    assert len(a.vertices) == len(b.vertices)
    for x, y in ((a, b), (b, a)):
        assert cKDTree(y.vertices).query(x.vertices)[0].max() <= tol


@pytest.mark.parametrize("resolution", [64])
@pytest.mark.parametrize("fusion", ["paper", "distance"])
@pytest.mark.parametrize(("gen", "ovf"), CASES, ids=IDS)
def test_tensor_meshing_equals_the_dense_field(resolution: int, fusion: str, gen, ovf) -> None:
    cfg = replace(TENSORS, resolution=resolution, band=3, fusion=fusion)
    sparse = extract_field(gen, ovf, cfg, band_width=0.05)
    volume = dense_fused_volume(gen, ovf, cfg, "cpu", band_width=0.05)
    dense = march_volume(volume)
    if ovf is not None and fusion == "distance":
        dense = drop_band_artifacts(dense, gen, cfg.width * 0.05, cfg.batch_points, "cpu")
    assert len(sparse.faces) > 100
    assert_same_mesh(sparse, dense, tol=1e-6)
    assert defects(sparse.faces).manifold
    # the numpy path's mesh (scikit-image) has the same vertices
    same_vertices(sparse, extract_field(gen, ovf, replace(cfg, meshing="numpy"), band_width=0.05), 1e-6)


def test_the_search_is_sparse_and_evaluates_each_vertex_once() -> None:
    points: list[torch.Tensor] = []

    def counted(x: torch.Tensor) -> torch.Tensor:
        points.append(x.clone())
        return sphere(0.5)(x)

    memo = LatticeMemo(counted, replace(TENSORS, resolution=128), "cpu")
    mesh = fused_mesh(memo, None, 0.0, None, lambda *_: None)
    seen = torch.cat(points)
    assert len(mesh.faces) > 1000
    assert len(torch.unique(seen, dim=0)) == len(seen)  # the memo: no vertex twice
    assert len(seen) < 0.1 * 129**3  # a sparse search, not the lattice


def test_parts_to_join_go_on_from_the_values_the_device_found() -> None:
    """Two balls 0.1 apart need a join (numpy's lattice walk): the tensor path hands over every s_g
    value it has, so no vertex is evaluated twice, and the result is the numpy path's joined mesh."""
    points: list[torch.Tensor] = []

    def two_balls(x: torch.Tensor) -> torch.Tensor:
        points.append(x.clone())
        offset = torch.tensor([0.45, 0.0, 0.0])
        return torch.minimum((x - offset).norm(dim=-1), (x + offset).norm(dim=-1)) - 0.4

    cfg = replace(TENSORS, resolution=64)
    joined = extract_field(two_balls, None, cfg, join_gap=0.15)
    seen = torch.cat(points)
    assert len(torch.unique(seen, dim=0)) == len(seen)
    assert joined.component_count() == 1
    numpy_path = extract_field(two_balls, None, replace(cfg, meshing="numpy"), join_gap=0.15)
    assert_same_mesh(joined, numpy_path, tol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_table_closes_every_surface_with_outward_faces(seed: int) -> None:
    """Noise at the lattice's scale meets all 256 corner configurations; every edge has two faces."""
    rng = np.random.default_rng(seed)
    volume = (rng.normal(size=(25, 25, 25)) + 0.3).astype(np.float32)
    volume[[0, -1]], volume[:, [0, -1]], volume[:, :, [0, -1]] = 1.0, 1.0, 1.0
    mesh = march_volume(volume)
    tm = mesh.to_trimesh()
    assert tm.is_watertight and tm.is_winding_consistent
    assert defects(mesh.faces).manifold
    labels = mesh.component_labels()
    # each part encloses its inside: outer shells positive, shells of voids negative, none empty
    assert (np.abs(mesh.component_volumes(labels)) > 0).all()
    assert mesh.component_volumes(labels).sum() > 0
    assert triangles(0, 0) == triangles(255, 63) == ()


def test_a_sphere_matches_scikit_image() -> None:
    n = 48
    ijk = np.indices((n + 1,) * 3).reshape(3, -1).T * (2.0 / n) - 1.0
    volume = (np.linalg.norm(ijk, axis=1) - 0.6).reshape((n + 1,) * 3).astype(np.float32)
    ours, theirs = march_volume(volume), mesh_volume(volume)
    same_vertices(ours, theirs, 1e-6)  # a quad may be split along its other diagonal
    assert len(ours.faces) == len(theirs.faces)
    assert abs(ours.to_trimesh().volume - 4 / 3 * np.pi * 0.6**3) < 0.01


def test_a_blend_takes_the_numpy_path_only_for_a_join() -> None:
    cfg = replace(TENSORS, resolution=64, width=1.0)
    memos = [EndMemo(cfg.resolution) for _ in ENDS]
    gen, fused = fields([0.5, 0.3, 0.2], memos)
    numpy_path = extract_field(gen, fused, replace(cfg, meshing="numpy"), band_width=WIDTH, join_gap=0.1)
    tensors = extract_field(gen, fused, cfg, band_width=WIDTH, join_gap=0.1)
    same_vertices(tensors, numpy_path, 1e-6)
    # two balls apart: the join needs the lattice, so the numpy path meshes it (one body)
    apart = lambda x: torch.minimum(sphere(0.3, (-0.4, 0, 0))(x), sphere(0.3, (0.45, 0, 0))(x))  # noqa: E731
    joined = extract_field(apart, None, cfg, join_gap=0.2)
    assert joined.component_count() == 1
    assert extract_field(apart, None, cfg).component_count() == 2


def test_auto_puts_the_lattice_on_cuda_only() -> None:
    auto = ExtractConfig()
    assert auto.meshing == "auto" and not chosen(auto, "cpu") and chosen(auto, "cuda:0")
    assert chosen(TENSORS, "cpu") and not chosen(replace(auto, meshing="numpy"), "cuda")


@pytest.mark.parametrize("resolution", [8, 64, 100])
def test_the_trained_region_gathered_on_the_device_equals_its_lattice_mask(resolution: int) -> None:
    grid = np.random.default_rng(resolution).integers(0, 255, (32, 32, 32)).astype(np.uint8)
    region = TrainedRegion(grid, 0.05)
    on_device = _region_mask(region, resolution, torch.device("cpu")).numpy()
    assert on_device.any() and (on_device == region.lattice_mask(resolution)).all()
