"""``compact-sdf prepare`` end to end (one real process, the rest in-process), and the shipped shapes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from compact_sdf.cli import main
from compact_sdf.data.cache import load_samples
from compact_sdf.data.shapes import builtin_shapes

pytestmark = pytest.mark.process  # starts processes (a server, the CLI, ranks)


def run_cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COMPACT_SDF_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "compact_sdf", "prepare", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_prepare_writes_samples_and_prints_report(tmp_path: Path, shared_meshes: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(
        str(shared_meshes / "knight_small.ply"), "--out", str(out), "--preset", "tiny",
        "--set", "sampling.uniform_samples=1234", "--name", "knight", cache=tmp_path / "cache",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "knight: 502 vertices, 1000 faces - ok" in result.stdout
    samples = load_samples(out / "knight.samples.npz")
    assert samples.name == "knight" and len(samples.gen_sdf) == 20_000 + 1234
    assert (
        f"knight: {len(samples.ovf_sdf):,} overfitting samples, 21,234 generalization samples"
        in result.stdout
    )
    assert "band: exact distance" in result.stderr  # the progress bar
    assert len(list((tmp_path / "cache").glob("*.samples.npz"))) == 1


def test_open_mesh_is_refused_with_one_line(
    tmp_path: Path, shared_meshes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "prepare",
        str(shared_meshes / "bunny_open_scan.ply"),
        "--out",
        str(tmp_path),
        "--cache",
        str(tmp_path),
    ]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert (
        "error [not_watertight] the mesh is not watertight (223 boundary or non-manifold edges)"
        in captured.out
    )
    assert captured.err.strip() == "compact-sdf: error: refused: bunny_open_scan (see the report above)"
    assert list(tmp_path.iterdir()) == []


def test_unreadable_file_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.obj"
    bad.write_text("v 0 0 0\nv 1 0 0\nf 1 2 3\n")
    assert main(["prepare", str(bad), "--out", str(tmp_path / "o"), "--cache", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        "compact-sdf: error: broken.obj line 3: face refers to vertex '3' but the file defines 2 vertices"
    )


def test_bad_setting_and_name_misuse(
    tmp_path: Path, shared_meshes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    knight = str(shared_meshes / "knight_small.ply")
    common = ["--out", str(tmp_path), "--cache", str(tmp_path)]
    assert main(["prepare", knight, *common, "--set", "sampling.bogus=1"]) == 2
    assert "unknown setting 'sampling.bogus'" in capsys.readouterr().err
    assert main(["prepare", knight, knight, *common, "--name", "x"]) == 2
    assert "--name needs exactly one mesh" in capsys.readouterr().err
    assert main(["prepare", knight, knight, *common]) == 2
    assert "several meshes would be named knight_small" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_builtin_shapes_are_closed_and_oriented() -> None:
    shapes = builtin_shapes()
    assert {"sphere", "torus", "rounded_box", "capsule", "spot"} <= set(shapes)
    for name, mesh in shapes.items():
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0, name
    assert len(shapes["spot"].faces) == 5856
    shapes["sphere"].vertices += 1.0  # copies: the next call is unaffected
    assert np.allclose(builtin_shapes()["sphere"].bounds.mean(axis=0), 0.0, atol=1e-9)
