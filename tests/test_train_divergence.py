"""A branch that stops learning is caught, and training goes back to its last good checkpoint.

The two logs in tests/data are real: a paper-preset run on an H200 (bf16, six shared meshes, 4000
steps) whose s_o died at step 530 and never came back (its loss stayed at about the variance of
its targets, and the fused extraction of tray_bottom found no surface), and the twelve-shape
`detail` model of docs/benchmarks/fidelity.md, which trained normally.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from _train_helpers import sphere_and_box, tiny_config
from compact_sdf.checkpoint import read_checkpoint
from compact_sdf.training.divergence import PATIENCE, DivergenceWatch
from compact_sdf.training.train import train

DATA = Path(__file__).parent / "data"


def _rows(path: Path) -> list[dict[str, float]]:
    with path.open(newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _first_divergence(rows: list[dict[str, float]]) -> int | None:
    watch = DivergenceWatch()
    for row in rows:
        watch.update(int(row["step"]), row)
        if watch.diverged:
            return int(row["step"])
    return None


def test_the_dead_branch_of_a_real_run_is_caught_soon_after_it_died() -> None:
    rows = _rows(DATA / "paper_h200_dead_ovf_log.csv")
    # s_o's loss: 4e-6 at step 520, 3.1e-4 from 540 to the end
    assert _first_divergence(rows) == 520 + PATIENCE


def test_spikes_that_recover_and_normal_runs_are_left_alone() -> None:
    # The same run's s_g spiked 12-18x for single windows (steps 530, 680, 860) and came back.
    rows = _rows(DATA / "paper_h200_dead_ovf_log.csv")
    gen_only = [dict(r, loss_ovf=1e-3 / r["step"]) for r in rows]
    assert _first_divergence(gen_only) is None
    assert _first_divergence(_rows(DATA / "detail_12_shapes_log.csv")) is None


def _train_then_kill_s_o(tmp_path: Path, lr_mlp: float) -> tuple[Path, float]:
    """50 good steps (saved), then a resumed run whose MLP learning rate kills s_o's ReLUs."""
    model = tmp_path / "m"
    shapes = sphere_and_box()
    good = train(model, shapes, tiny_config(steps=50, checkpoint_every=25))
    train(model, shapes, tiny_config(steps=150, checkpoint_every=25, lr_mlp=lr_mlp), resume=True)
    return model, good.loss_ovf


@pytest.mark.slow
def test_a_killed_branch_goes_back_with_lower_learning_rates(tmp_path: Path) -> None:
    model, before = _train_then_kill_s_o(tmp_path, lr_mlp=0.3)
    summary = json.loads((model / "model.json").read_text())
    assert summary["step"] == 150
    back = summary["rollbacks"]
    assert back and all(b["to"] == 50 for b in back)
    assert back[0]["at"] >= 50 + PATIENCE  # a spike is given its patience from the resumed step on
    assert [b["lr_scale"] for b in back] == [0.5**k for k in range(1, len(back) + 1)]
    # s_o learns again from the step-50 model instead of sitting at its targets' variance
    assert summary["last_losses"]["loss_ovf"] < before
    steps = [r["step"] for r in _rows(model / "log.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == 150  # the dead stretch left the log


@pytest.mark.slow
def test_a_run_that_keeps_diverging_stops_with_the_good_checkpoint_kept(tmp_path: Path) -> None:
    with pytest.raises(FloatingPointError, match="keeps step 50"):
        _train_then_kill_s_o(tmp_path, lr_mlp=10.0)
    saved = read_checkpoint(tmp_path / "m")
    assert saved["step"] == 50 and saved["rollbacks"] == []


def test_resume_takes_the_new_learning_rates(tmp_path: Path) -> None:
    model = tmp_path / "m"
    shapes = sphere_and_box()
    train(model, shapes, tiny_config(steps=10))
    train(model, shapes, tiny_config(steps=20, lr_grid=0.01), resume=True)
    assert _rows(model / "log.csv")[-1]["lr"] == pytest.approx(0.01)


def test_a_run_cancelled_in_a_spike_keeps_and_reports_the_good_checkpoint(tmp_path: Path) -> None:
    model = tmp_path / "m"
    shapes = sphere_and_box()
    train(model, shapes, tiny_config(steps=50, checkpoint_every=25))
    calls = iter(range(10_000))
    result = train(
        model,
        shapes,
        tiny_config(steps=150, checkpoint_every=25, lr_mlp=0.3),
        resume=True,
        should_stop=lambda: next(calls) >= 20,  # 20 steps after the kill: the spike is open
    )
    assert result.cancelled and result.step == 50
    assert read_checkpoint(model)["step"] == 50
