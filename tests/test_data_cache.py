"""The sample cache: hits, invalidation by settings, and damaged files rebuilt, never used."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import trimesh
from compact_sdf.config import SamplingConfig, get_preset
from compact_sdf.data import cache, prepare_mesh
from compact_sdf.data.cache import cache_key, load_or_prepare, load_samples, save_samples
from compact_sdf.data.load import mesh_hash
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.errors import InputError

CFG = SamplingConfig(
    coarse_cells=8, fine_cells=16, band_width=2 * 2 / 16, surface_samples=300, uniform_samples=200
)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count real preparations (the cache's call into sampling)."""
    calls: list[str] = []
    real = cache.prepare_samples

    def spy(mesh: trimesh.Trimesh, cfg: SamplingConfig, name: str, progress: object = None) -> ShapeSamples:
        calls.append(name)
        return real(mesh, cfg, name, progress)  # type: ignore[arg-type]

    monkeypatch.setattr(cache, "prepare_samples", spy)
    return calls


def only_file(folder: Path) -> Path:
    files = list(folder.iterdir())
    assert len(files) == 1, files  # no temporary files left behind
    return files[0]


def test_second_call_is_a_cache_hit(tmp_path: Path, counted: list[str]) -> None:
    box = trimesh.creation.box()
    first = load_or_prepare(box, "a", CFG, tmp_path)
    second = load_or_prepare(box, "b", CFG, tmp_path)
    assert counted == ["a"]
    assert second.name == "b"
    np.testing.assert_array_equal(first.ovf_points, second.ovf_points)
    np.testing.assert_array_equal(first.gen_sdf, second.gen_sdf)
    assert second.normalization == first.normalization and second.mesh_hash == mesh_hash(box)


def test_changed_settings_or_geometry_miss(tmp_path: Path, counted: list[str]) -> None:
    box = trimesh.creation.box()
    load_or_prepare(box, "a", CFG, tmp_path)
    load_or_prepare(box, "a", SamplingConfig(**{**CFG.__dict__, "band_width": 0.1}), tmp_path)
    load_or_prepare(box, "a", SamplingConfig(**{**CFG.__dict__, "seed": 1}), tmp_path)
    load_or_prepare(trimesh.creation.box(extents=(1, 2, 1)), "a", CFG, tmp_path)
    assert len(counted) == 4 and len(list(tmp_path.iterdir())) == 4
    load_or_prepare(box, "a", SamplingConfig(**{**CFG.__dict__, "near_threshold": 0.3}), tmp_path)
    assert len(counted) == 4  # the sampler's threshold does not change the samples


def test_key_depends_on_hash_and_settings() -> None:
    assert cache_key("x", CFG) == cache_key("x", CFG)
    assert cache_key("x", CFG) != cache_key("y", CFG)
    assert cache_key("x", CFG) != cache_key("x", SamplingConfig(**{**CFG.__dict__, "fine_cells": 32}))


def test_detail_preset_reuses_previews_samples() -> None:
    """``detail`` differs from ``preview`` only in its MLP width: switching to it for thin parts
    reuses the cached samples, and a fidelity comparison of the two is one of networks alone."""
    preview, detail = get_preset("preview"), get_preset("detail")
    assert cache_key("ab" * 16, detail.sampling) == cache_key("ab" * 16, preview.sampling)
    assert replace(detail.model, hidden=preview.model.hidden) == preview.model
    assert detail.model.hidden == 2 * preview.model.hidden
    assert detail.train == preview.train


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
def test_damaged_file_is_detected_and_rebuilt(tmp_path: Path, counted: list[str], damage: str) -> None:
    box = trimesh.creation.box()
    good = load_or_prepare(box, "a", CFG, tmp_path)
    path = only_file(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "flip":  # one byte inside the array payload
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) * 2 // 3]
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"not a zip file" * 100)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"damaged samples file|fails its length/checksum test"):
        load_samples(path)
    stages: list[str] = []
    rebuilt = load_or_prepare(box, "a", CFG, tmp_path, progress=lambda s, f: stages.append(s))
    assert counted == ["a", "a"] and stages[0] == "cache file damaged: rebuilding"
    np.testing.assert_array_equal(rebuilt.ovf_sdf, good.ovf_sdf)
    load_samples(only_file(tmp_path))  # the rebuilt file is whole again


def test_checksum_catches_a_consistent_looking_edit(tmp_path: Path) -> None:
    """A file rewritten with other values but the old metadata fails verification."""
    samples = load_or_prepare(trimesh.creation.box(), "a", CFG, tmp_path)
    path = only_file(tmp_path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["ovf_sdf"] = arrays["ovf_sdf"] + np.float32(0.01)
    np.savez(path, **arrays)
    with pytest.raises(InputError, match="fails its length/checksum test"):
        load_samples(path)
    assert len(samples.ovf_sdf) == len(arrays["ovf_sdf"])


def test_wrong_key_is_refused(tmp_path: Path) -> None:
    samples = load_or_prepare(trimesh.creation.box(), "a", CFG, tmp_path)
    path = save_samples(samples, tmp_path / "x.samples.npz", key="abc")
    assert load_samples(path, expect_key="abc").name == "a"
    with pytest.raises(InputError, match="made with other settings"):
        load_samples(path, expect_key="def")
    with pytest.raises(InputError, match="samples file not found"):
        load_samples(tmp_path / "missing.samples.npz")


def test_default_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPACT_SDF_CACHE", str(tmp_path / "c"))
    samples = prepare_mesh(trimesh.creation.box(), name="box", cfg=CFG)
    assert samples.name == "box" and samples.report is not None and samples.report.ok
    assert len(list((tmp_path / "c").glob("*.samples.npz"))) == 1
    monkeypatch.delenv("COMPACT_SDF_CACHE")
    assert cache.default_cache_dir() == Path.home() / ".cache" / "compact_sdf"
