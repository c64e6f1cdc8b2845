"""The "Set up backend" logic outside Blender: planned commands, diagnoses, and real background runs."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections import namedtuple
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("csdf_setup_env", REPO / "addon" / "setup_env.py")
assert _spec is not None and _spec.loader is not None
setup_env = importlib.util.module_from_spec(_spec)
sys.modules["csdf_setup_env"] = setup_env  # dataclasses look the module up while the class is made
_spec.loader.exec_module(setup_env)


def fake_venv(tmp_path: Path) -> Path:
    """A "venv" whose python runs this interpreter (has torch + compact_sdf): set-up skips its creation.
    A wrapper script, not a symlink: a symlinked venv python would lose the venv's site-packages."""
    venv = tmp_path / "venv"
    python = setup_env.venv_python(venv)
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return venv


def test_plan_creates_venv_installs_cpu_torch_backend_then_checks(tmp_path: Path) -> None:
    plan = setup_env.SetupPlan(Path("/blender/python"), tmp_path / "env", tmp_path / "backend", torch="cpu")
    steps = setup_env.plan_steps(plan)
    assert [s.label for s in steps] == [
        "create the environment",
        "install torch (cpu)",
        "install the backend",
        "check the installation",
    ]
    assert steps[0].argv == ["/blender/python", "-m", "venv", str(tmp_path / "env")]
    assert steps[1].argv[-3:] == ["--index-url", setup_env.CPU_TORCH_INDEX, "torch"]
    assert steps[2].argv[-1] == str(tmp_path / "backend")
    cuda = setup_env.plan_steps(
        setup_env.SetupPlan(
            Path("/py"), tmp_path / "env", tmp_path / "b", torch="cuda", extra_pip_args=("--proxy", "p")
        )
    )
    assert "--index-url" not in cuda[1].argv and cuda[1].argv[-3:] == ["--proxy", "p", "torch"]


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        (["OSError: [Errno 28] No space left on device"], "disk is full"),
        (["ERROR: Could not find a version that satisfies the requirement torch"], "no torch wheel"),
        (
            ["WARNING: Retrying ... Failed to establish a new connection: [Errno -3]"],
            "could not reach the package index",
        ),
        (
            ["Error: Command '...' returned non-zero exit status 1.", "ensurepip is not available"],
            "cannot create environments",
        ),
        (
            ["ERROR: Directory '/x' is not installable. Neither 'setup.py' nor 'pyproject.toml' found."],
            "not installable",
        ),
    ],
)
def test_diagnose_names_the_cause(log: list[str], expected: str) -> None:
    message = setup_env.diagnose("install the backend", 1, log)
    assert message.startswith("Set-up failed at 'install the backend'")
    assert expected in message


def test_wrong_torch_build_is_explained() -> None:
    cpu_build = setup_env.InstallReport("2.13.0+cpu", None, False, "0.1.0")
    cuda_build_no_gpu = setup_env.InstallReport("2.13.0", "12.6", False, "0.1.0")
    assert "CPU-only build but CUDA was chosen" in setup_env.torch_mismatch(cpu_build, "cuda")
    assert "sees no GPU" in setup_env.torch_mismatch(cuda_build_no_gpu, "cuda")
    assert "CUDA 12.6 build although CPU was chosen" in setup_env.torch_mismatch(cuda_build_no_gpu, "cpu")
    assert setup_env.torch_mismatch(cpu_build, "cpu") is None


@pytest.mark.process
def test_full_disk_is_refused_before_downloading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(setup_env.shutil, "disk_usage", lambda _: usage(10**10, 10**10 - 10**8, 10**8))
    plan = setup_env.SetupPlan(Path(sys.executable), tmp_path / "no" / "such" / "env", tmp_path, torch="cpu")
    job = setup_env.SetupJob(plan)
    job.start()
    assert job.wait(30) == "failed"
    assert job.message.startswith("Not enough disk space") and "0.1 GB free" in job.message
    assert not (tmp_path / "no").exists()


@pytest.mark.process
def test_failed_pip_is_diagnosed_in_words(tmp_path: Path) -> None:
    not_a_project = tmp_path / "backend"
    not_a_project.mkdir()
    plan = setup_env.SetupPlan(
        Path(sys.executable),
        fake_venv(tmp_path),
        not_a_project,
        install_torch=False,
        extra_pip_args=("--no-index",),
    )
    job = setup_env.SetupJob(plan)
    job.start()
    assert job.wait(120) == "failed"
    assert job.message.startswith("Set-up failed at 'install the backend'")
    assert "pyproject.toml" in job.message or "not installable" in job.message
    assert any(line.startswith("$ ") for line in job.lines())  # the log shows each command


@pytest.mark.process
def test_successful_setup_reports_the_installed_torch(tmp_path: Path) -> None:
    """A real run: pip (offline, no deps) re-installs the bundled backend, then the check imports torch."""
    plan = setup_env.SetupPlan(
        Path(sys.executable),
        fake_venv(tmp_path),
        REPO / "backend",
        install_torch=False,
        extra_pip_args=("--no-index", "--no-deps", "--no-build-isolation", "--dry-run"),
    )
    job = setup_env.SetupJob(plan)
    job.start()
    assert job.wait(300) == "ok", job.lines()
    import torch

    assert job.report is not None and job.report.torch == torch.__version__
    assert job.message.startswith(f"Backend {job.report.backend} ready with torch {torch.__version__}")


@pytest.mark.process
def test_cancel_stops_the_running_step(tmp_path: Path) -> None:
    plan = setup_env.SetupPlan(
        Path(sys.executable), fake_venv(tmp_path), REPO / "backend", install_torch=False
    )
    job = setup_env.SetupJob(plan)
    job._run_step = _slow_step(job)  # a step that would run for a minute
    job.start()
    job.cancel()
    assert job.wait(30) == "cancelled"


def _slow_step(job: object):  # type: ignore[no-untyped-def]
    original = setup_env.SetupJob._run_step

    def run(step):  # type: ignore[no-untyped-def]
        return original(
            job, setup_env.Step(step.label, [sys.executable, "-c", "import time; time.sleep(60)"])
        )

    return run


def test_child_environment_drops_blenders_python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/blender/scripts")
    monkeypatch.setenv("PYTHONHOME", "/blender/python")
    env = setup_env.clean_env()
    assert "PYTHONPATH" not in env and "PYTHONHOME" not in env
    assert env["PATH"] == os.environ["PATH"]
