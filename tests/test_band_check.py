"""The distance fusion's assumption (s_g holds the surface inside the band) is measured at the end of
every training run and reported when it fails: the CLI warns, model.json keeps the shares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _train_helpers import analytic_samples, sphere_sdf, tiny_config
from compact_sdf.cli import main
from compact_sdf.extract.band_check import (
    COVERAGE_GOAL,
    Coverage,
    advice,
    band_coverage,
    generalization_set,
    misses,
)
from compact_sdf.model import DualSDF
from compact_sdf.training.train import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ball():
    return analytic_samples("ball", lambda p: sphere_sdf(p, 0.5))


@pytest.mark.slow
def test_a_model_stopped_early_is_reported_and_a_trained_one_is_not(
    tmp_path: Path, shared_meshes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meshes = [str(shared_meshes / f"{s}.ply") for s in ("bunny", "tray_bottom")]
    out, cache = tmp_path / "model", tmp_path / "cache"
    args = ["--preset", "tiny", "--out", str(out), "--cache", str(cache), "--no-progress"]
    assert main(["train", *meshes, "--steps", "5", *args]) == 0
    early = capsys.readouterr().out
    coverage = json.loads((out / "model.json").read_text())["band_coverage"]
    assert set(coverage) == {"bunny", "tray_bottom"}
    assert all(c["share"] < COVERAGE_GOAL and c["width"] > 0.75 for c in coverage.values()), coverage
    assert "warning: the generalization branch puts less than 99% of the surface of 2 shape(s)" in early
    assert "bunny" in early and "train --resume with a higher --steps" in early
    assert main(["train", "--resume", *args]) == 0  # no new steps: the recorded shares are reported again
    assert "warning: the generalization branch puts less than 99%" in capsys.readouterr().out

    assert main(["train", "--resume", "--steps", "300", *args]) == 0
    trained = capsys.readouterr().out
    coverage = json.loads((out / "model.json").read_text())["band_coverage"]
    assert all(c["share"] >= COVERAGE_GOAL and c["width"] < 0.75 for c in coverage.values()), coverage
    assert "warning" not in trained


def test_the_share_counts_points_near_the_surface_only() -> None:
    """s_g exact on the -x half of a ball and 2w too far out on the +x half: half the surface is in
    the band. Counting the set's far points (uniform in the box) as well would lower the share."""
    cfg = tiny_config()
    model = DualSDF(cfg.model, 1)
    width = cfg.extract.width * cfg.sampling.band_width
    model.sdf_gen = lambda z, x: x.norm(dim=-1) - 0.5 + 2.0 * width * (x[..., 0] > 0)  # type: ignore[method-assign]
    (c,) = band_coverage(model, [generalization_set(_ball(), torch.device("cpu"))], cfg)
    assert 0.45 < c.share < 0.55
    assert c.width > 2.0 * cfg.extract.width  # holding 99% takes the +x half's offset


def test_advice_offers_a_wider_band_only_inside_the_training_band() -> None:
    near = {"a": Coverage(0.97, 0.83)}
    assert "--set extract.width=0.85" in advice(near)
    far = {"a": Coverage(0.4, 3.2), "b": Coverage(0.9, 0.9)}
    line = advice(far)
    assert "extract.width" not in line and line.index("a 40.0%") < line.index("b 90.0%")
    assert misses(["a", "b"], [Coverage(0.99, 0.7), Coverage(0.5, 2.0)]) == {"b": Coverage(0.5, 2.0)}


def test_a_cancelled_run_still_records_its_coverage(tmp_path: Path) -> None:
    calls = iter(range(100))
    result = train(tmp_path / "m", [_ball()], tiny_config(steps=50), should_stop=lambda: next(calls) >= 3)
    assert result.cancelled and result.step == 3
    assert result.band_misses and "ball" in result.band_advice
    recorded = json.loads((tmp_path / "m" / "model.json").read_text())["band_coverage"]["ball"]
    assert recorded["share"] == pytest.approx(result.band_misses["ball"])


def test_the_panel_names_the_shapes_that_lose_detail() -> None:
    from _service_helpers import addon_module

    note = addon_module("notes").training_note
    assert note({"train": {"rollbacks": 0, "band_misses": {}}}) == ""
    line = note({"train": {"rollbacks": 1, "band_misses": {"a": 0.95, "b": 0.5, "c": 0.9, "d": 0.98}}})
    assert "diverged 1x" in line and "b 50.0%, c 90.0%, a 95.0% and 1 more" in line
    assert "encode again with more Steps" in line
    assert "into a new model" in note({"fit": {"band_misses": {"new": 0.7}}})


def test_the_panel_warns_when_an_added_shape_is_still_poorly_held() -> None:
    """Add to Model's summary: a fine-tune that held the shape is a success that says it fine-tuned; a
    shape still outside the band is a warning (Blender's report level) that says what to do."""
    from _service_helpers import addon_module

    notes = addon_module("notes")
    first = {"fertility": 0.35}
    held = notes.summary("Added fertility into model 12345678", {"fit": {"mode": "full", "iterations": 600,
                         "code_misses": first, "band_misses": {}}})  # fmt: skip
    assert notes.level(True, held) == "INFO"
    assert "held too little of it (fertility 35.0% inside the fusion band)" in held and "600 steps" in held
    poor = notes.summary("Added fertility", {"fit": {"mode": "full", "code_misses": first,
                         "band_misses": {"fertility": 0.6}}})  # fmt: skip
    assert notes.level(True, poor) == "WARNING" and "fertility 60.0%" in poor
    assert "even after fine-tuning" in poor and "into a new model" in poor
    code = notes.summary("Added fertility", {"fit": {"mode": "code", "band_misses": first}})
    assert notes.level(True, code) == "WARNING" and "Mode Auto or Full" in code
    assert notes.level(False, "Add fertility: cancelled") == "ERROR"
