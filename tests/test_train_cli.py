"""``compact-sdf train`` / ``plot-loss`` on a real mesh: total steps, resume from recorded sources, PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compact_sdf.checkpoint import load_model
from compact_sdf.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
def test_train_resume_and_plot(
    tmp_path: Path, shared_meshes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = shared_meshes / "knight_small.ply"
    out, cache = tmp_path / "model", tmp_path / "cache"
    small = ["--set", "train.samples_per_shape=256", "--set", "train.log_every=2"]
    args = ["train", str(mesh), "--preset", "tiny", "--steps", "4", "--out", str(out), "--cache", str(cache)]
    assert main([*args, *small]) == 0
    first = capsys.readouterr()
    assert "trained 1 shape(s) to step 4/4" in first.out
    assert "band: exact distance" in first.err  # the preparation's bar
    loaded = load_model(out)
    assert loaded.names == ["knight_small"] and loaded.config.preset == "tiny"
    assert loaded.shapes[0].source == str(mesh.resolve()) and loaded.config.train.samples_per_shape == 256

    # resume: settings come from the checkpoint, the mesh from its recorded path; --steps is the total
    assert (
        main(["train", "--resume", "--steps", "6", "--out", str(out), "--cache", str(cache), "--no-progress"])
        == 0
    )
    summary = json.loads((out / "model.json").read_text())
    assert summary["step"] == 6 and summary["preset"] == "tiny"
    # a mesh added on resume: its code is fitted before the first step, under a bar of its own
    capsys.readouterr()
    spot = shared_meshes / "spot.ply"
    resume = ["train", "--resume", "--steps", "7", "--out", str(out), "--cache", str(cache)]
    assert main([*resume, str(spot)]) == 0
    added = capsys.readouterr()
    assert "trained 2 shape(s) to step 7/7" in added.out
    assert "warm start spot (1/1), code fit" in added.err
    assert main(["train", "--resume", "--preset", "paper", "--steps", "8", "--out", str(out)]) == 2
    assert "trained with preset 'tiny'" in capsys.readouterr().err

    assert main(["plot-loss", str(out), "--out", str(tmp_path / "loss.png")]) == 0
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(tmp_path / "nope.ply"), "--preset", "tiny", "--out", str(tmp_path / "m")]) == 2
    assert "no such mesh file" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(tmp_path / "m")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["plot-loss", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no loss log" in err and err.count("\n") == 1
