"""The held-out check: points never trained on, best.pt = the lowest mean check, a resume measures
its start, and shapes that got worse are reported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from _train_helpers import sphere_and_box, tiny_config
from compact_sdf.checkpoint import BEST_NAME, load_model, read_checkpoint
from compact_sdf.training import heldout
from compact_sdf.training.train import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def scripted(monkeypatch: pytest.MonkeyPatch, means: list[float]) -> list[int]:
    """Make the check return ``means`` in turn (both shapes alike); returns the call log."""
    calls: list[int] = []
    values: Iterator[float] = iter(means)

    def measure(model, held) -> list[float]:
        calls.append(len(held))
        value = next(values)
        return [value] * len(held)

    monkeypatch.setattr(heldout, "measure", measure)
    return calls


def test_held_out_points_are_band_points_left_out_of_training() -> None:
    shape = sphere_and_box()[0]
    kept, held = heldout.split(shape, 0.1, seed=0, device=torch.device("cpu"))
    assert 0 < len(held.sdf) <= heldout.HELD and held.sdf.abs().max() <= 0.1
    assert len(kept.gen_sdf) == len(shape.gen_sdf) - len(held.sdf)
    trained = {tuple(p) for p in kept.gen_points.tolist()}
    assert not any(tuple(p) in trained for p in held.points.tolist())
    again = heldout.split(shape, 0.1, seed=0, device=torch.device("cpu"))[1]
    assert torch.equal(again.points, held.points)  # a resume holds out the same points


def test_best_is_the_lowest_mean_check_and_worse_shapes_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = scripted(monkeypatch, [3.0, 1.0, 2.0, 2.5])  # checkpoints at 5, 10, 15 and the end (20)
    result = train(tmp_path, sphere_and_box(), tiny_config(steps=20, checkpoint_every=5))
    assert len(calls) == 4
    assert read_checkpoint(tmp_path / BEST_NAME)["step"] == 10 and result.best_step == 10
    assert read_checkpoint(tmp_path)["step"] == 20
    assert result.check_worse == {"sphere": (1.0, 2.5), "box": (1.0, 2.5)}
    summary = json.loads((tmp_path / "model.json").read_text())["check"]
    assert summary["best_step"] == 10 and summary["last"] == {"sphere": 2.5, "box": 2.5}
    assert load_model(tmp_path / BEST_NAME).step == 10  # best.pt loads like a checkpoint


def test_a_resume_measures_its_start_and_keeps_the_earlier_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted(monkeypatch, [2.0, 1.0])  # steps 5 and 10
    train(tmp_path, sphere_and_box(), tiny_config(steps=10, checkpoint_every=5))
    calls = scripted(monkeypatch, [1.0, 1.5, 0.5])  # the start (10), 15, the end (20)
    result = train(tmp_path, sphere_and_box(), tiny_config(steps=20, checkpoint_every=5), resume=True)
    assert len(calls) == 3
    assert read_checkpoint(tmp_path / BEST_NAME)["step"] == 20 and result.check_worse == {}
    calls = scripted(monkeypatch, [0.6, 0.9])  # a resume that only gets worse keeps step 20
    result = train(tmp_path, sphere_and_box(), tiny_config(steps=25, checkpoint_every=5), resume=True)
    assert read_checkpoint(tmp_path / BEST_NAME)["step"] == 20 and result.best_step == 20
    assert set(result.check_worse) == {"sphere", "box"}


def test_the_real_check_falls_with_training(tmp_path: Path) -> None:
    train(tmp_path, sphere_and_box(), tiny_config(steps=60, checkpoint_every=10))
    check = json.loads((tmp_path / "model.json").read_text())["check"]
    assert set(check["last"]) == {"sphere", "box"}
    assert all(np.isfinite(v) and v < 0.05 for v in check["last"].values())
    assert (tmp_path / BEST_NAME).exists()
