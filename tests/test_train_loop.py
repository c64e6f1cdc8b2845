"""The training loop on analytic shapes: both branches learn, the dense path works, logs and progress."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _train_helpers import analytic_samples, sphere_and_box, tiny_config
from compact_sdf.checkpoint import load_model
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.errors import InputError
from compact_sdf.model import DualSDF
from compact_sdf.training.train import TrainProgress, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _branch_mse(model: DualSDF, shapes: list[ShapeSamples], ovf_clamp: float) -> tuple[float, float]:
    """Mean squared error of each branch over every sample of every shape, s_o's on values
    clamped to +-``ovf_clamp`` like its loss (``train.ovf_clamp``)."""
    gen, ovf = [], []
    with torch.no_grad():
        for k, s in enumerate(shapes):
            z = model.codes.weight[k]
            gen.append(
                (model.sdf_gen(z, torch.from_numpy(s.gen_points)) - torch.from_numpy(s.gen_sdf)).square()
            )
            pred = model.sdf_ovf(z, torch.from_numpy(s.ovf_points)).clamp(-ovf_clamp, ovf_clamp)
            ovf.append((pred - torch.from_numpy(s.ovf_sdf).clamp(-ovf_clamp, ovf_clamp)).square())
    return float(torch.cat(gen).mean()), float(torch.cat(ovf).mean())


def test_short_training_drives_both_losses_down(tmp_path: Path) -> None:
    shapes = sphere_and_box()
    cfg = tiny_config(steps=150)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.train.seed)
        init = DualSDF(cfg.model, len(shapes))
    clamp = cfg.train.ovf_clamp * cfg.sampling.band_width
    assert clamp > 0  # the default
    gen0, ovf0 = _branch_mse(init, shapes, clamp)
    seen: list[TrainProgress] = []
    result = train(tmp_path / "m", shapes, cfg, progress=seen.append)
    assert not result.cancelled and result.step == 150
    gen1, ovf1 = _branch_mse(load_model(tmp_path / "m").model, shapes, clamp)
    assert gen0 / gen1 > 30, (gen0, gen1)
    assert ovf0 / ovf1 > 30, (ovf0, ovf1)
    assert [p.step for p in seen] == list(range(1, 151))
    assert seen[-1].eta_s == 0 and all(p.samples_per_s > 0 for p in seen)

    rows = list(csv.DictReader((tmp_path / "m" / "log.csv").open()))
    assert list(rows[0]) == [
        "step",
        "loss_gen",
        "loss_ovf",
        "loss_z",
        "loss_c",
        "lr",
        "samples_per_s",
        "elapsed",
    ]
    assert [int(r["step"]) for r in rows] == list(range(5, 151, 5))
    assert float(rows[-1]["loss_c"]) > 0  # the grid learned something
    summary = json.loads((tmp_path / "m" / "model.json").read_text())
    assert summary["step"] == 150 and [s["name"] for s in summary["shapes"]] == ["sphere", "box"]


def test_dense_grid_path_and_l1_loss_train(tmp_path: Path) -> None:
    shapes = sphere_and_box()
    cfg = tiny_config(steps=40, sparse_grid=False, loss="l1")
    result = train(tmp_path / "m", shapes, cfg)
    loaded = load_model(tmp_path / "m")
    assert not loaded.model.grid.sparse and float(loaded.model.grid.weight.detach().abs().sum()) > 0
    rows = list(csv.DictReader((tmp_path / "m" / "log.csv").open()))
    assert float(rows[-1]["loss_ovf"]) < float(rows[0]["loss_ovf"]) / 3
    assert result.loss_ovf == pytest.approx(float(rows[-1]["loss_ovf"]), rel=1e-4)


def test_lr_schedule_is_logged(tmp_path: Path) -> None:
    cfg = tiny_config(steps=20, decay_every=10, decay_factor=0.5, lr_grid=0.04)
    train(tmp_path / "m", sphere_and_box(), cfg)
    rows = list(csv.DictReader((tmp_path / "m" / "log.csv").open()))
    assert [float(r["lr"]) for r in rows] == [0.04, 0.04, 0.02, 0.02]


def test_user_errors_are_clear(tmp_path: Path) -> None:
    shapes = sphere_and_box()
    with pytest.raises(InputError, match="at least one shape"):
        train(tmp_path / "a", [], tiny_config(steps=1))
    with pytest.raises(InputError, match="unique"):
        train(tmp_path / "a", [shapes[0], shapes[0]], tiny_config(steps=1))
    with pytest.raises(ValueError, match=r"train\.loss"):
        train(tmp_path / "a", shapes, tiny_config(steps=1, loss="huber"))
    train(tmp_path / "b", shapes, tiny_config(steps=2))
    with pytest.raises(InputError, match="already holds a model"):
        train(tmp_path / "b", shapes, tiny_config(steps=4))


def test_a_lone_shape_far_from_the_initial_sphere_trains_its_overfitting_branch(tmp_path: Path) -> None:
    """A small ball in a corner: every point of its band is further from s_o's initial sphere than
    the clamp, which gives no gradient there; with DeepSDF's clamp s_o's loss stayed flat."""
    ball = [analytic_samples("corner", lambda p: np.linalg.norm(p - 0.6, axis=1) - 0.2, seed=3)]
    train(tmp_path / "m", ball, tiny_config(steps=60))
    with (tmp_path / "m" / "log.csv").open(newline="") as fh:
        ovf = [float(r["loss_ovf"]) for r in csv.DictReader(fh)]
    assert ovf[-1] < 0.2 * ovf[0]


def test_the_time_left_leaves_out_the_first_steps_warm_up() -> None:
    """A first step 20x a later one (lazy allocations, kernel loads) must not make the first estimates
    too long: none until a later step was timed, then within 1.5x of the truth at once."""
    import math

    from compact_sdf.training.eta import StepClock

    clock, now, total = StepClock(), 100.0, 50
    clock.start(now)
    times = [20.0] + [1.0] * (total - 1)  # seconds each step takes
    estimates = []
    for done, took in enumerate(times, start=1):
        now += took
        clock.tick(now)
        estimates.append(clock.eta(total - done))
    assert math.isnan(estimates[0])
    truth = [float(total - done) for done in range(2, total + 1)]
    assert all(e == pytest.approx(t) for e, t in zip(estimates[1:], truth, strict=True))
    clock.start(now)  # a new run (resume) starts a new warm-up
    clock.tick(now + 5.0)
    assert math.isnan(clock.eta(10))
