"""Checkpoints: exact resume after an interruption, cancel, adding shapes, damaged files refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _train_helpers import analytic_samples, box_sdf, sphere_and_box, tiny_config
from compact_sdf.checkpoint import load_model, read_checkpoint
from compact_sdf.config import RETIRED, Config
from compact_sdf.errors import CheckpointError, InputError
from compact_sdf.training.train import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _params(model_dir: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(model_dir)["model"]


def test_resume_after_cancel_equals_uninterrupted_run(tmp_path: Path) -> None:
    shapes = sphere_and_box()
    # decay, warm-up and a checkpoint all fall inside the run, on both sides of the interruption
    cfg = tiny_config(steps=24, decay_every=8, reg_warmup=10, checkpoint_every=5)
    train(tmp_path / "full", shapes, cfg)

    calls = {"n": 0}

    def stop_after_11() -> bool:
        calls["n"] += 1
        return calls["n"] > 11

    first = train(tmp_path / "cut", shapes, cfg, should_stop=stop_after_11)
    assert first.cancelled and first.step == 11
    assert read_checkpoint(tmp_path / "cut")["step"] == 11
    second = train(tmp_path / "cut", shapes, cfg, resume=True)
    assert not second.cancelled and second.step == 24

    full, cut = _params(tmp_path / "full"), _params(tmp_path / "cut")
    assert full.keys() == cut.keys()
    for key in full:
        assert torch.equal(full[key], cut[key]), key  # bitwise on CPU
    # the log has no duplicated or missing rows across the interruption
    steps = [int(line.split(",")[0]) for line in (tmp_path / "cut" / "log.csv").read_text().splitlines()[1:]]
    assert steps == [5, 10, 15, 20, 24]


def test_steps_is_the_total(tmp_path: Path) -> None:
    shapes = sphere_and_box()
    train(tmp_path / "m", shapes, tiny_config(steps=6))
    result = train(tmp_path / "m", shapes, tiny_config(steps=9), resume=True)
    assert result.step == 9 and load_model(tmp_path / "m").step == 9
    again = train(tmp_path / "m", shapes, tiny_config(steps=9), resume=True)
    assert again.step == 9  # nothing left to do


@pytest.mark.slow
def test_resume_with_more_shapes_appends_codes(tmp_path: Path) -> None:
    sphere, box = sphere_and_box()
    train(tmp_path / "m", [sphere], tiny_config(steps=5))
    code = load_model(tmp_path / "m").code("sphere").clone()
    thin = analytic_samples("thin", lambda p: box_sdf(p, (0.8, 0.1, 0.5)), seed=3)
    train(tmp_path / "m", [box, thin, sphere], tiny_config(steps=10), resume=True)
    loaded = load_model(tmp_path / "m")
    assert loaded.names == ["sphere", "box", "thin"] and loaded.step == 10
    assert loaded.model.codes.weight.shape[0] == 3
    assert not torch.equal(loaded.code("sphere"), code)  # it kept training
    with pytest.raises(InputError, match="missing: sphere"):
        train(tmp_path / "m", [box], tiny_config(steps=12), resume=True)


def test_resume_refuses_other_model_settings(tmp_path: Path) -> None:
    shapes = sphere_and_box()
    train(tmp_path / "m", shapes, tiny_config(steps=2))
    with pytest.raises(CheckpointError, match="model settings"):
        train(tmp_path / "m", shapes, tiny_config(steps=4).override({"model.hidden": 32}), resume=True)
    with pytest.raises(CheckpointError, match="sparse_grid"):
        train(tmp_path / "m", shapes, tiny_config(steps=4, sparse_grid=False), resume=True)


def test_damaged_checkpoints_give_one_line_errors(tmp_path: Path) -> None:
    shapes = sphere_and_box()
    train(tmp_path / "m", shapes, tiny_config(steps=2))
    ckpt = tmp_path / "m" / "checkpoint.pt"
    good = ckpt.read_bytes()

    def refused(match: str) -> None:
        with pytest.raises(CheckpointError, match=match) as info:
            load_model(tmp_path / "m")
        assert "\n" not in str(info.value)

    ckpt.write_bytes(good[: len(good) // 2])
    refused("damaged checkpoint")
    ckpt.write_bytes(b"not a checkpoint at all" * 10)
    refused("damaged checkpoint")
    torch.save({"hello": 1}, ckpt)
    refused("not a compact-sdf checkpoint")
    ckpt.unlink()
    refused("no checkpoint")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(tmp_path / "m", shapes, tiny_config(steps=4), resume=True)


def test_wrong_version_and_mismatched_weights_are_refused(tmp_path: Path) -> None:
    train(tmp_path / "m", sphere_and_box(), tiny_config(steps=2))
    ckpt = tmp_path / "m" / "checkpoint.pt"
    data = torch.load(ckpt, weights_only=True)
    torch.save({**data, "version": 99}, ckpt)
    with pytest.raises(CheckpointError, match="format version 99"):
        load_model(tmp_path / "m")
    model = dict(data["model"])
    model["grid.weight"] = model["grid.weight"][:10]
    torch.save({**data, "model": model}, ckpt)
    with pytest.raises(CheckpointError, match="does not match"):
        load_model(tmp_path / "m")


def test_loaded_model_lookup(tmp_path: Path) -> None:
    train(tmp_path / "m", sphere_and_box(), tiny_config(steps=1), sources={"box": "/meshes/box.ply"})
    loaded = load_model(tmp_path / "m")
    assert loaded.shape_index("box") == 1 and loaded.code("box").shape == (loaded.config.model.code_dim,)
    assert loaded.shapes[1].source == "/meshes/box.ply" and loaded.shapes[0].source is None
    assert loaded.shapes[0].mesh_hash == "analytic-sphere"
    with pytest.raises(InputError, match="knows: sphere, box"):
        loaded.shape_index("cow")


def test_resume_after_codes_appended_to_the_checkpoint(tmp_path: Path) -> None:
    """A code added to the checkpoint by another tool (codes import) resumes with fresh Adam moments."""
    sphere, box = sphere_and_box()
    train(tmp_path / "m", [sphere], tiny_config(steps=3))
    ckpt = tmp_path / "m" / "checkpoint.pt"
    data = torch.load(ckpt, weights_only=True)
    codes = data["model"]["codes.weight"]
    data["model"]["codes.weight"] = torch.cat([codes, codes[:1] * 0.5])
    data["shapes"].append({**data["shapes"][0], "name": "box", "mesh_hash": box.mesh_hash})
    torch.save(data, ckpt)
    result = train(tmp_path / "m", [sphere, box], tiny_config(steps=6), resume=True)
    assert result.step == 6 and load_model(tmp_path / "m").names == ["sphere", "box"]


def test_checkpoints_with_retired_settings_still_load(tmp_path: Path) -> None:
    """A checkpoint written while the latent-prior experiment shipped holds its settings; they are dropped."""
    train(tmp_path / "m", sphere_and_box(), tiny_config(steps=1))
    ckpt = tmp_path / "m" / "checkpoint.pt"
    data = torch.load(ckpt, weights_only=True)
    old = {key.partition(".")[2]: 0 for key in RETIRED} | {"code_prior": "norm", "blend_path": "linear"}
    config = {**data["config"], "train": {**data["config"]["train"], **old}}
    torch.save({**data, "config": config}, ckpt)
    loaded = load_model(tmp_path / "m")
    assert loaded.config == Config.from_dict(data["config"])
    with pytest.raises(ValueError, match="unknown keys"):
        Config.from_dict({**config, "train": {**config["train"], "not_a_setting": 1}})
