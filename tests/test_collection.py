"""The shape collection: reproducible, every procedural mesh a closed single solid, cached on disk;
its preparation over a process pool; the scaling rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from compact_sdf.config import get_preset
from compact_sdf.data.collection import (
    build_collection,
    family_member,
    folder_shapes,
    procedural_shapes,
    read_manifest,
    write_collection,
)
from compact_sdf.data.families import FAMILIES
from compact_sdf.data.load import load_mesh, mesh_hash
from compact_sdf.training.scale import SAMPLE_SHARE, for_collection


def test_same_seed_same_meshes_other_seed_other_meshes() -> None:
    first = [s.hash for s in procedural_shapes(per_family=2, seed=3)]
    again = [s.hash for s in procedural_shapes(per_family=2, seed=3)]
    other = [s.hash for s in procedural_shapes(per_family=2, seed=4)]
    assert first == again
    assert len(set(first)) == len(first)  # members differ
    assert not set(first) & set(other)


def test_a_member_does_not_depend_on_how_many_are_built() -> None:
    assert family_member("chair", 3).hash == procedural_shapes(per_family=5, families=["chair"])[3].hash


def test_every_procedural_shape_is_one_closed_solid() -> None:
    shapes = procedural_shapes(per_family=8)
    assert len(shapes) == 8 * len(FAMILIES) >= 48
    for s in shapes:
        mesh = s.mesh
        assert mesh.is_watertight and mesh.is_winding_consistent, s.name
        assert mesh.volume > 0, s.name
        assert len(mesh.split(only_watertight=False)) == 1, s.name


def test_collection_reaches_fifty_with_the_shared_meshes(shared_meshes: Path) -> None:
    scans = folder_shapes(shared_meshes)
    assert "bunny_open_scan" not in {s.name for s in scans}  # open meshes stay out
    shapes = build_collection(per_family=8, extra=shared_meshes)
    assert len(shapes) >= 50 and len({s.name for s in shapes}) == len(shapes)
    assert [s.name for s in build_collection(extra=shared_meshes, limit=7)] == [s.name for s in shapes[:7]]
    assert {s.family for s in shapes[:7]} == {*FAMILIES, "scan"}  # a prefix mixes every family


def test_written_collection_reloads_identically_and_is_reused(tmp_path: Path) -> None:
    shapes = build_collection(per_family=1)
    write_collection(shapes, tmp_path)
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.ply")}
    write_collection(shapes, tmp_path)  # same settings: files are kept, not rewritten
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.ply")} == stamps
    manifest = read_manifest(tmp_path)
    for entry, shape in zip(manifest["shapes"], shapes, strict=True):
        reloaded = load_mesh(tmp_path / f"{shape.name}.ply")
        assert entry["hash"] == shape.hash == mesh_hash(reloaded)
        assert entry["params"] == shape.params and entry["family"] == shape.family


def test_collection_rule_keeps_the_step_cost() -> None:
    base = get_preset("preview")
    per_step = base.train.shapes_per_batch * base.train.samples_per_shape
    alone = base.train.steps * base.train.samples_per_shape  # samples one shape gets from the preset
    assert for_collection(base, 5) == base
    previous = for_collection(base, 9)
    for n in (20, 50, 100):
        cfg = for_collection(base, n)
        tc = cfg.train
        assert tc.shapes_per_batch == 15
        assert abs(tc.shapes_per_batch * tc.samples_per_shape - per_step) <= tc.shapes_per_batch
        share = tc.steps * tc.shapes_per_batch * tc.samples_per_shape / n / alone
        assert abs(share - SAMPLE_SHARE) < 0.01  # linear in n: each shape keeps its share of samples
        stretch = max(1.0, tc.steps / base.train.steps / 2)  # the rate is halved more often than alone
        assert tc.decay_every / base.train.decay_every == pytest.approx(stretch, rel=0.01)
        # the grid widens by powers of two, never narrows, and the MLPs and codes stay the preset's
        assert cfg.model.grid_channels >= previous.model.grid_channels >= base.model.grid_channels
        assert (cfg.model.hidden, cfg.model.code_dim, cfg.model.grid_res) == (128, 64, 33)
        previous = cfg
    assert for_collection(base, 50).model.grid_channels == 64
    assert (for_collection(base, 50).train.steps, for_collection(base, 50).train.decay_every) == (3000, 1000)
    assert for_collection(base, 12).train.steps == 720  # 600 x 1.2, not one more from float noise


@pytest.mark.slow
@pytest.mark.process
@pytest.mark.parametrize("jobs", [2])
def test_pool_preparation_equals_serial(tmp_path: Path, jobs: int) -> None:
    from compact_sdf.data import prepare_mesh
    from compact_sdf.data.parallel import prepare_many

    shapes = build_collection(per_family=1, limit=2)
    write_collection(shapes, tmp_path / "meshes")
    paths = [tmp_path / "meshes" / f"{s.name}.ply" for s in shapes]
    cfg = get_preset("tiny").sampling
    pooled = prepare_many(paths, cfg, tmp_path / "cache", jobs=jobs, progress=False)
    serial = [prepare_mesh(p, None, cfg, tmp_path / "serial") for p in paths]
    for a, b in zip(pooled, serial, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(a.ovf_sdf, b.ovf_sdf)
        np.testing.assert_array_equal(a.gen_points, b.gen_points)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_train_scales_the_preset_to_the_meshes_unless_told_not_to() -> None:
    from compact_sdf.cli import build_parser

    meshes = [f"m{i}.ply" for i in range(50)]
    args = build_parser().parse_args(["train", *meshes, "--out", "o", "--set", "train.seed=3"])
    cfg = args.request(args).config()
    want = for_collection(get_preset("preview"), 50)
    assert (cfg.train.shapes_per_batch, cfg.train.steps, cfg.train.seed) == (15, want.train.steps, 3)
    assert cfg.model.grid_channels == want.model.grid_channels == 64
    plain = build_parser().parse_args(["train", *meshes, "--out", "o", "--no-collection"])
    assert plain.request(plain).config().train == get_preset("preview").train
    few = build_parser().parse_args(["train", *meshes[:8], "--out", "o"])
    assert few.request(few).config() == get_preset("preview")  # up to the preset's batch: unchanged
