"""The record of where s_o was trained: the fusion keeps what s_g misses, drops s_o's far-field
surfaces, equals its dense definition; checkpoints carry the record and older ones load without it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from _train_helpers import sphere_and_box, tiny_config
from compact_sdf.checkpoint import CHECKPOINT_NAME, load_model, read_checkpoint
from compact_sdf.config import ExtractConfig
from compact_sdf.extract.dense import dense_mesh
from compact_sdf.extract.fusion import extract_field, extract_shape
from compact_sdf.extract.lattice import Lattice
from compact_sdf.extract.manifold import defects
from compact_sdf.extract.mesh import MeshArrays
from compact_sdf.trained_region import MAX_CELLS, TrainedRegion, record
from compact_sdf.training.train import train
from test_extract_fusion import assert_same_mesh, sphere

BAND = 0.05  # the training band half-width of these fields: the s_g band is 0.75 x 0.05 wide


def long_fin(x: torch.Tensor) -> torch.Tensor:
    """The true shape: a sphere (r 0.5) with a fin 0.02 thick out to r 0.8, far past s_g's band."""
    fin = torch.maximum(x[:, 2].abs() - 0.01, x[:, :2].norm(dim=-1) - 0.8)
    return torch.minimum(sphere(0.5)(x), fin)


def blob(x: torch.Tensor) -> torch.Tensor:
    return sphere(0.06, (-0.75, -0.75, 0.75))(x)


def ovf(x: torch.Tensor) -> torch.Tensor:
    """s_o: the true shape, plus a far-field blob where it had no samples near a surface."""
    return torch.minimum(long_fin(x), blob(x))


def fin_region(cells: int = 64) -> TrainedRegion:
    """The record training would write: samples on a 128 lattice, the true distances."""
    lat = Lattice(128)
    points = torch.as_tensor(lat.points(np.indices((129,) * 3).reshape(3, -1).T), dtype=torch.float32)
    return record(points, long_fin(points), BAND, cells)


def fin_reach(mesh: MeshArrays) -> float:
    flat = np.abs(mesh.vertices[:, 2]) < 0.02
    return float(np.linalg.norm(mesh.vertices[flat, :2], axis=1).max())


def test_the_fusion_keeps_a_thin_part_s_g_misses_and_drops_far_field_surfaces() -> None:
    cfg = ExtractConfig(resolution=96)
    gen = sphere(0.5)
    with_region = extract_field(gen, ovf, cfg, band_width=BAND, region=fin_region())
    without = extract_field(gen, ovf, cfg, band_width=BAND)
    assert fin_reach(with_region) > 0.78  # the whole fin
    assert fin_reach(without) < 0.5 + 0.75 * BAND + 0.03  # cut where s_g's band ends
    for mesh in (with_region, without):
        assert np.linalg.norm(mesh.vertices - np.array([-0.75, -0.75, 0.75]), axis=1).min() > 0.2
    assert defects(with_region.faces).manifold and with_region.to_trimesh().is_watertight
    dense = dense_mesh(gen, cfg, ovf_fn=ovf, band_width=BAND, region=fin_region())
    assert_same_mesh(with_region, dense, 1e-5)


def test_a_closed_part_away_from_the_trained_surface_is_dropped() -> None:
    """A bubble in s_o inside the body, cut by the edge of s_g's band (the shells measured on the
    cow), is dropped by the record's rule as by s_g's; the fin stays."""

    def bubbly(x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(ovf(x), 0.01 - (x - torch.tensor([0.0, 0.0, -0.46])).norm(dim=-1))

    cfg = ExtractConfig(resolution=128)
    assert len(dense_mesh(bubbly, cfg).to_trimesh().split(only_watertight=False)) == 3  # body, blob, bubble
    kept = extract_field(sphere(0.5), bubbly, cfg, band_width=BAND, region=fin_region())
    assert len(kept.to_trimesh().split(only_watertight=False)) == 1
    assert fin_reach(kept) > 0.78


def test_the_paper_fusion_ignores_the_record() -> None:
    cfg = ExtractConfig(resolution=64, fusion="paper")
    a = extract_field(sphere(0.5), ovf, cfg, region=fin_region())
    assert_same_mesh(a, extract_field(sphere(0.5), ovf, cfg), 1e-6)


def test_record_is_the_smallest_distance_per_cell() -> None:
    points = torch.tensor([[-0.99, -0.99, -0.99], [-0.98, -0.98, -0.98], [0.5, 0.5, 0.5]])
    region = record(points, torch.tensor([0.05, -0.01, 1.0]), 0.04, 8)
    assert region.grid.dtype == np.uint8 and region.grid.shape == (8, 8, 8)
    assert region.grid[0, 0, 0] == 16  # 0.01 in steps of 0.04 / 64, the smaller of the two
    assert region.grid[6, 6, 6] == 255 and region.grid[3, 3, 3] == 255
    assert region.near(np.array([[-0.95, -0.95, -0.95]]), 0.25).tolist() == [True]
    assert region.near(np.array([[-0.95, -0.95, -0.95]]), 0.2).tolist() == [False]


@pytest.mark.usefixtures("one_torch_thread")
def test_checkpoints_carry_the_record_and_older_ones_load_without_it(tmp_path: Path) -> None:
    shapes = sphere_and_box()
    train(tmp_path / "m", shapes, tiny_config(steps=20))
    loaded = load_model(tmp_path / "m")
    region = loaded.region("box")
    assert region is not None and region.grid.dtype == np.uint8
    assert region.grid.shape[0] <= MAX_CELLS and region.band_width == loaded.config.sampling.band_width
    assert region.cells_within(0.25).any() and not region.cells_within(0.25).all()

    data = read_checkpoint(tmp_path / "m")
    del data["trained_region"]
    torch.save(data, tmp_path / "m" / CHECKPOINT_NAME)
    old = load_model(tmp_path / "m")
    assert old.regions == {} and old.region("box") is None
    cfg = ExtractConfig(resolution=48)
    plain = extract_shape(loaded, "box", replace(cfg, trained_region=False))
    assert_same_mesh(extract_shape(old, "box", cfg), plain, 1e-6)
