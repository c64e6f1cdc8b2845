"""Extraction, interpolation, codes and fitting on a small model trained on two analytic shapes."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from compact_sdf.checkpoint import load_model
from compact_sdf.codes import decoder_hash, export_codes, import_codes, read_codes
from compact_sdf.config import ExtractConfig, get_preset
from compact_sdf.data.normalize import Normalization
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.errors import InputError
from compact_sdf.extract import MeshArrays, extract_shape
from compact_sdf.fit import fit_shape
from compact_sdf.interpolate import interpolate_shapes
from compact_sdf.metrics import point_metrics
from compact_sdf.train import train

SPHERE_NORM = Normalization(center=(1.0, 2.0, 3.0), scale=2.0)
BOX_NORM = Normalization(center=(-1.0, 0.0, 0.0), scale=0.5)


def sphere_sdf(p: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p, axis=1) - 0.6


def box_sdf(p: np.ndarray) -> np.ndarray:
    q = np.abs(p) - np.array([0.7, 0.4, 0.3])
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)


def analytic_samples(name: str, sdf, norm: Normalization, seed: int) -> ShapeSamples:
    """Training sets like the data pipeline's, from an exact SDF: uniform plus near-surface points."""
    rng = np.random.default_rng(seed)
    cand = rng.uniform(-1, 1, size=(400_000, 3))
    d = sdf(cand)
    near = cand[np.abs(d) < 0.05][:20_000]
    lattice = np.stack(np.meshgrid(*[np.linspace(-1, 1, 33)] * 3, indexing="ij"), -1).reshape(-1, 3)
    gen = np.concatenate([near, cand[:10_000]]).astype(np.float32)
    ovf = np.concatenate([lattice, near]).astype(np.float32)
    return ShapeSamples(
        name, f"hash-{name}", norm, ovf, sdf(ovf).astype(np.float32), gen, sdf(gen).astype(np.float32)
    )


def _mesh_metrics(a: MeshArrays, b: MeshArrays, norm: Normalization) -> dict[str, float]:
    """Sample-based metrics in unit coordinates (both meshes given in own coordinates of ``norm``)."""
    pa = norm.to_unit(a.to_trimesh().sample(20_000, seed=0))
    pb = norm.to_unit(b.to_trimesh().sample(20_000, seed=1))
    return point_metrics(pa, pb)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    model_dir = tmp_path_factory.mktemp("model") / "two"
    cfg = get_preset("tiny")
    cfg = replace(cfg, train=replace(cfg.train, device="cpu"))
    shapes = [
        analytic_samples("sphere", sphere_sdf, SPHERE_NORM, 0),
        analytic_samples("box", box_sdf, BOX_NORM, 1),
    ]
    train(model_dir, shapes, cfg)
    return model_dir


def unit(mesh: MeshArrays, norm: Normalization) -> np.ndarray:
    return norm.to_unit(mesh.vertices)


def test_extract_shape_in_own_coordinates(trained: Path) -> None:
    loaded = load_model(trained)
    cfg = ExtractConfig(resolution=48)
    sphere = extract_shape(loaded, "sphere", cfg)
    radii = np.linalg.norm(unit(sphere, SPHERE_NORM), axis=1)
    assert abs(np.median(radii) - 0.6) < 0.08
    assert np.allclose(sphere.vertices.mean(axis=0), (1.0, 2.0, 3.0), atol=0.1)  # scale 2: radius 0.3 there
    box = extract_shape(loaded, "box", cfg)
    extent = np.ptp(unit(box, BOX_NORM), axis=0)
    assert np.allclose(extent, [1.4, 0.8, 0.6], atol=0.2)
    for mode in ("generalization", "overfitting"):
        other = extract_shape(loaded, "box", cfg, mode=mode)
        assert _mesh_metrics(other, box, BOX_NORM)["chamfer"] < 0.05
    with pytest.raises(InputError, match="this model knows"):
        extract_shape(loaded, "teapot", cfg)
    with pytest.raises(InputError, match="mode"):
        extract_shape(loaded, "box", cfg, mode="both")


def test_interpolation_endpoints_reproduce_the_shapes(trained: Path) -> None:
    loaded = load_model(trained)
    cfg = ExtractConfig(resolution=40)
    ends = [extract_shape(loaded, n, cfg) for n in ("sphere", "box")]
    for mode in ("linear", "slerp"):
        path = interpolate_shapes(loaded, ["sphere", "box"], 3, mode, cfg)
        assert len(path) == 3
        for got, want in ((path[0], ends[0]), (path[-1], ends[1])):
            assert np.array_equal(got.faces, want.faces) and np.allclose(
                got.vertices, want.vertices, atol=1e-6
            )
        mid = unit(path[1], Normalization(center=(0.0, 1.0, 1.5), scale=1.0))
        assert 0.3 < np.ptp(mid, axis=0).max() < 1.6  # a real shape in between, placed between the two


def test_codes_export_import_round_trip(trained: Path, tmp_path: Path) -> None:
    loaded = load_model(trained)
    out = export_codes(loaded, tmp_path / "codes.npz")
    names, codes, meta = read_codes(out)
    assert names == ["sphere", "box"] and codes.shape == (2, loaded.model.cfg.code_dim)
    assert meta["code_size"] == codes.shape[1] and meta["model_hash"] == decoder_hash(
        loaded.model.state_dict()
    )
    assert meta["shapes"]["sphere"]["normalization"] == SPHERE_NORM.to_dict()
    single = export_codes(loaded, tmp_path / "codes.json")
    assert np.allclose(json.loads(single.read_text())["codes"], codes)

    # A copy of the model whose codes were scrambled gets its shapes back from the export.
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    data = torch.load(copy / "checkpoint.pt", weights_only=True)
    data["model"]["codes.weight"] = torch.randn_like(data["model"]["codes.weight"])
    torch.save(data, copy / "checkpoint.pt")
    assert import_codes(copy, out) == ["sphere", "box"]
    restored = load_model(copy)
    assert torch.equal(restored.model.codes.weight, loaded.model.codes.weight)
    cfg = ExtractConfig(resolution=32)
    a, b = extract_shape(restored, "box", cfg), extract_shape(loaded, "box", cfg)
    assert np.array_equal(a.faces, b.faces) and np.allclose(a.vertices, b.vertices)

    # Under a new name the code is appended as a new shape with its placement.
    meta["names"] = ["sphere", "ball"]
    meta["shapes"]["ball"] = meta["shapes"].pop("box")
    np.savez(tmp_path / "renamed.npz", codes=codes, names=np.array(["sphere", "ball"]))
    (tmp_path / "renamed.json").write_text(json.dumps(meta))
    import_codes(copy, tmp_path / "renamed.npz")
    grown = load_model(copy)
    assert grown.names == ["sphere", "box", "ball"]
    assert torch.equal(grown.code("ball"), loaded.code("box"))
    assert grown.shapes[2].normalization == BOX_NORM

    np.savez(tmp_path / "wide.npz", codes=np.zeros((1, 99), np.float32), names=np.array(["x"]))
    with pytest.raises(InputError, match="size 99"):
        import_codes(copy, tmp_path / "wide.npz")


def test_code_fit_recovers_a_training_shape(trained: Path, tmp_path: Path) -> None:
    copy = tmp_path / "fit"
    shutil.copytree(trained, copy)
    samples = analytic_samples("box_again", box_sdf, BOX_NORM, 7)
    cfg = load_model(copy).config
    cfg = replace(cfg, train=replace(cfg.train, samples_per_shape=1000, device="cpu"))
    result = fit_shape(copy, samples, cfg, iterations=150)
    assert result.mode == "code" and np.isfinite(result.loss_gen)
    loaded = load_model(copy)
    assert loaded.names == ["sphere", "box", "box_again"]
    cfg = ExtractConfig(resolution=40)
    fitted, box, sphere = (extract_shape(loaded, n, cfg) for n in ("box_again", "box", "sphere"))
    to_box = _mesh_metrics(fitted, box, BOX_NORM)
    sphere_here = BOX_NORM.from_unit(unit(sphere, SPHERE_NORM)).astype(np.float32)  # the sphere in box space
    to_sphere = _mesh_metrics(fitted, MeshArrays(sphere_here, sphere.faces, sphere.normals), BOX_NORM)
    assert to_box["chamfer"] < 0.2 * to_sphere["chamfer"]
    with pytest.raises(InputError, match="already has a shape named 'box'"):
        fit_shape(copy, analytic_samples("box", box_sdf, BOX_NORM, 8), iterations=5)
