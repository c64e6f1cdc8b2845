"""Sparse extraction equals its dense definition on a trained model of shared meshes (not only on
analytic fields): trained generalization branches are steeper than a distance field (measured up
to 2.7 against the assumed 1.5), which the search must detect and absorb."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from compact_sdf.checkpoint import load_model
from compact_sdf.config import ExtractConfig, get_preset
from compact_sdf.data import prepare_mesh
from compact_sdf.extract.connect import join_parts
from compact_sdf.extract.dense import dense_fused_volume, dense_mesh, drop_band_artifacts
from compact_sdf.extract.fusion import extract_field
from compact_sdf.extract.handles import quarter_cell
from compact_sdf.extract.lattice import Lattice, evaluate
from compact_sdf.extract.manifold import defects
from compact_sdf.extract.mesh_quality import quality
from compact_sdf.surface_figures import shape_stats
from compact_sdf.training.train import train
from test_extract_fusion import assert_same_mesh
from test_extract_on_device import march_volume

SHAPES = ("knight_small", "tray_bottom")


def genus(mesh) -> int:
    return shape_stats(mesh.to_trimesh())["genus"]


pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # prepares two meshes, trains


@pytest.fixture(scope="module", params=["tiny", "preview"])
def loaded(request, tmp_path_factory, shared_meshes):
    """A briefly trained model of each small preset (preview: the CPU preset users train)."""
    root = tmp_path_factory.mktemp(f"trained-{request.param}")
    cfg = get_preset(request.param)
    cfg = replace(cfg, train=replace(cfg.train, device="cpu", steps=40))
    meshes = [shared_meshes / f"{s}.ply" for s in SHAPES]
    samples = [prepare_mesh(m, cfg=cfg.sampling, cache_dir=root / "cache") for m in meshes]
    train(root / "model", samples, cfg, sources={m.stem: str(m) for m in meshes})
    return load_model(root / "model")


@pytest.mark.parametrize("resolution", [64, 96])
@pytest.mark.parametrize("fusion", ["distance", "paper"])
def test_sparse_equals_dense_on_a_trained_model(
    loaded, one_torch_thread, resolution: int, fusion: str
) -> None:
    band_width = loaded.config.sampling.band_width
    cfg = ExtractConfig(resolution=resolution, fusion=fusion)
    for name in SHAPES:
        z = loaded.code(name)

        def gen(x, z=z):
            return loaded.model.sdf_gen(z, x)

        def ovf(x, z=z):
            return loaded.model.sdf_ovf(z, x)

        sparse = extract_field(gen, ovf, cfg, band_width=band_width)
        dense = dense_mesh(gen, cfg, ovf_fn=ovf, band_width=band_width)
        assert len(sparse.faces) > 100
        assert_same_mesh(sparse, dense, tol=1e-5)
        assert defects(sparse.faces).manifold
        if fusion == "distance":  # with the record of where s_o was trained, too
            region = loaded.region(name)
            assert region is not None
            with_region = extract_field(gen, ovf, cfg, band_width=band_width, region=region)
            dense_region = dense_mesh(gen, cfg, ovf_fn=ovf, band_width=band_width, region=region)
            assert_same_mesh(with_region, dense_region, tol=1e-5)
        if fusion == "distance":  # closing shallow handles sees the same lattice on both paths
            depth = quarter_cell(loaded.config.sampling.fine_cells)
            closed = extract_field(gen, ovf, cfg, band_width=band_width, handle_depth=depth)
            assert_same_mesh(
                closed, dense_mesh(gen, cfg, ovf_fn=ovf, band_width=band_width, handle_depth=depth), tol=1e-5
            )
            assert defects(closed.faces).manifold
            assert genus(closed) <= genus(sparse)
        assert_same_mesh(extract_field(gen, None, cfg), dense_mesh(gen, cfg), tol=1e-5)


@pytest.mark.parametrize("fusion", ["distance", "paper"])
def test_meshing_on_tensors_equals_the_dense_field_on_a_trained_model(
    loaded, one_torch_thread, fusion: str
) -> None:
    """The path CUDA takes by default (``extract.meshing=auto``), run on the CPU: a trained s_g is
    steeper than the search assumes, and the trained region widens the band."""
    band_width = loaded.config.sampling.band_width
    cfg = ExtractConfig(resolution=64, fusion=fusion, meshing="tensors")
    for name in SHAPES:
        z = loaded.code(name)
        gen = lambda x, z=z: loaded.model.sdf_gen(z, x)  # noqa: E731
        ovf = lambda x, z=z: loaded.model.sdf_ovf(z, x)  # noqa: E731
        region = loaded.region(name) if fusion == "distance" else None
        sparse = extract_field(gen, ovf, cfg, band_width=band_width, region=region)
        dense = march_volume(dense_fused_volume(gen, ovf, cfg, "cpu", band_width, region))
        if fusion == "distance":
            dense = drop_band_artifacts(
                dense, gen, cfg.width * band_width, cfg.batch_points, "cpu", 0.0, region
            )
        assert len(sparse.faces) > 100
        assert_same_mesh(sparse, dense, tol=1e-5)
        assert defects(sparse.faces).manifold


def test_joined_in_between_on_a_trained_model(loaded, one_torch_thread) -> None:
    """The join's assumption (exact s_g values out to the gap, from the guarded search) holds on a
    trained branch: the sparse joined in-between equals joining the dense s_g lattice, and it has
    no more parts than the plain one."""
    cfg = ExtractConfig(resolution=64)
    z = 0.5 * (loaded.code(SHAPES[0]) + loaded.code(SHAPES[1]))

    def gen(x):
        return loaded.model.sdf_gen(z, x)

    side = cfg.resolution + 1
    lat = Lattice(cfg.resolution)
    dense = evaluate(gen, lat.points(np.indices((side,) * 3).reshape(3, -1).T), 1 << 16, "cpu")
    joined = join_parts(dense.reshape((side,) * 3), 0.15).field

    def lookup(x):
        ijk = np.rint((x.numpy().astype(np.float64) + 1.0) * cfg.resolution / 2.0).astype(np.int64)
        return torch.from_numpy(joined[tuple(ijk.T)])

    sparse = extract_field(gen, None, cfg, join_gap=0.15)
    assert_same_mesh(sparse, dense_mesh(lookup, cfg), tol=1e-5)
    plain = quality(*_arrays(extract_field(gen, None, cfg)))
    got = quality(*_arrays(sparse))
    assert got.manifold and got.watertight and got.components <= plain.components


def _arrays(mesh):
    return mesh.vertices, mesh.faces


def test_the_handles_setting_reaches_the_extraction(loaded, one_torch_thread) -> None:
    """``extract.handles=close`` runs the rule of handles.py in ``extract_shape``; the default keeps."""
    from compact_sdf.extract.fusion import extract_shape

    for handles, expected in (("close", True), ("keep", False)):
        stages: list[str] = []
        cfg = ExtractConfig(resolution=64, handles=handles)
        heard = stages.append
        mesh = extract_shape(loaded, SHAPES[1], cfg, progress=lambda stage, f, heard=heard: heard(stage))
        assert ("shallow handles" in stages) is expected
        assert defects(mesh.faces).manifold
    assert ExtractConfig().handles == "keep"


def test_the_recorded_band_coverage_is_the_true_surfaces(loaded, shared_meshes, one_torch_thread) -> None:
    """band_check stands for each surface by its training points within w/8 of it; on the trained
    model that share agrees with the share of the true surface (area samples of the mesh) whose
    |s_g| is inside the fusion band."""
    import json

    from compact_sdf.data.load import load_mesh
    from compact_sdf.extract.band_check import fusion_half_width

    recorded = json.loads((loaded.model_dir / "model.json").read_text())["band_coverage"]
    width = fusion_half_width(loaded.config)
    for name in SHAPES:
        info = loaded.shapes[loaded.shape_index(name)]
        surface = info.normalization.to_unit(load_mesh(shared_meshes / f"{name}.ply").sample(20000, seed=0))
        with torch.no_grad():
            gen = loaded.model.sdf_gen(loaded.code(name), torch.from_numpy(surface.astype(np.float32)))
        true_share = float((gen.abs() <= width).float().mean())
        assert recorded[name]["share"] == pytest.approx(true_share, abs=0.015), (name, true_share)
