"""The "Set up backend" logic: make a venv, pip-install torch and the bundled backend, check the result.

Dependency set-up is where users of Blender AI add-ons get stuck, so every step runs in a background
thread (the UI never freezes), its output is kept as a log the preferences show, and a failure is
turned into one sentence that says what went wrong and what to do. Stdlib only; no bpy here so the
logic is testable outside Blender.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

TorchVariant = Literal["cpu", "cuda"]

# The PyTorch index that serves CPU-only wheels (small, no CUDA libraries). CUDA wheels come from PyPI's
# default torch on Linux/Windows, or from an index the user names in the preferences.
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# Free disk the set-up insists on before downloading anything: thresholds with a margin, not measurements;
# the CUDA build of torch brings the NVIDIA libraries and is several times the size of the CPU build.
NEEDED_BYTES: dict[str, int] = {"cpu": 2 * 1024**3, "cuda": 7 * 1024**3}

# Printed by the last step inside the new environment; parsed into InstallReport.
CHECK_SCRIPT = (
    "import json, torch, compact_sdf; "
    "print('COMPACT_SDF_CHECK ' + json.dumps({'torch': torch.__version__, "
    "'cuda_build': torch.version.cuda, 'cuda_available': bool(torch.cuda.is_available()), "
    "'backend': compact_sdf.__version__}))"
)


def venv_python(venv_dir: Path) -> Path:
    """The interpreter inside a venv on this platform."""
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def clean_env() -> dict[str, str]:
    """The environment for child interpreters: Blender's PYTHONPATH/PYTHONHOME must not leak into them."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@dataclass(frozen=True)
class SetupPlan:
    """What to install and where; built from the add-on preferences."""

    base_python: Path  # Blender's own interpreter (sys.executable inside Blender)
    venv_dir: Path
    backend_dir: Path  # <extension>/backend, the bundled sources
    torch: TorchVariant = "cpu"
    torch_index: str = ""  # empty: CPU_TORCH_INDEX for "cpu", pip's default index for "cuda"
    extra_pip_args: tuple[str, ...] = ()
    install_torch: bool = True  # False when torch is already present (e.g. a re-install of the backend)

    @property
    def python(self) -> Path:
        return venv_python(self.venv_dir)


@dataclass(frozen=True)
class Step:
    label: str
    argv: list[str]


def plan_steps(plan: SetupPlan) -> list[Step]:
    """The commands the set-up runs, in order (the venv step is skipped when the venv already exists)."""
    py = str(plan.python)
    pip = [py, "-m", "pip", "install", *plan.extra_pip_args]
    steps: list[Step] = []
    if not plan.python.exists():
        steps.append(
            Step("create the environment", [str(plan.base_python), "-m", "venv", str(plan.venv_dir)])
        )
    if plan.install_torch:
        index = plan.torch_index or (CPU_TORCH_INDEX if plan.torch == "cpu" else "")
        steps.append(
            Step(f"install torch ({plan.torch})", [*pip, *(["--index-url", index] if index else []), "torch"])
        )
    steps.append(Step("install the backend", [*pip, str(plan.backend_dir)]))
    steps.append(Step("check the installation", [py, "-c", CHECK_SCRIPT]))
    return steps


@dataclass(frozen=True)
class InstallReport:
    torch: str
    cuda_build: str | None
    cuda_available: bool
    backend: str


def parse_check(lines: list[str]) -> InstallReport | None:
    """The report the check step printed, or None when it printed none."""
    for line in reversed(lines):
        if line.startswith("COMPACT_SDF_CHECK "):
            return InstallReport(**json.loads(line.split(" ", 1)[1]))
    return None


def torch_mismatch(report: InstallReport, wanted: TorchVariant) -> str | None:
    """Explain a CPU/CUDA torch that does not match the choice in the preferences, else None."""
    if wanted == "cuda" and report.cuda_build is None:
        return (
            f"torch {report.torch} is a CPU-only build but CUDA was chosen: set 'Torch index' to the "
            "PyTorch CUDA index for your driver (e.g. https://download.pytorch.org/whl/cu126), set up again"
        )
    if wanted == "cuda" and not report.cuda_available:
        return (
            f"torch {report.torch} was built for CUDA {report.cuda_build} but sees no GPU: update the NVIDIA "
            "driver or pick an index for an older CUDA; the backend will run on the CPU meanwhile"
        )
    if wanted == "cpu" and report.cuda_build is not None:
        return (
            f"torch {report.torch} is a CUDA {report.cuda_build} build although CPU was chosen; it works, "
            "but uses several GB more disk than the CPU build"
        )
    return None


_DIAGNOSES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"No space left on device|Errno 28", re.I),
        "the disk is full: free some space or choose another data folder, then set up again",
    ),
    (
        re.compile(r"ensurepip|No module named venv", re.I),
        "this Python cannot create environments (no "
        "venv/ensurepip): choose another Python interpreter in the preferences",
    ),
    (
        re.compile(
            r"Could not find a version that satisfies the requirement torch|No matching distribution "
            r"found for torch",
            re.I,
        ),
        "pip found no torch wheel for this Python/platform: check the "
        "'Torch index' URL, or use a Python version PyTorch supports",
    ),
    (
        re.compile(
            r"Failed to establish a new connection|Temporary failure in name resolution|"
            r"Network is unreachable|ProxyError|Read timed out|ConnectionError",
            re.I,
        ),
        "pip could not reach the package index: check the internet connection or proxy, or give a local "
        "wheel folder with '--find-links DIR --no-index' in 'Extra pip arguments'",
    ),
    (
        re.compile(r"Permission denied|Errno 13", re.I),
        "permission denied writing the environment: choose a folder you can write to",
    ),
    (
        re.compile(r"SSL|CERTIFICATE_VERIFY_FAILED", re.I),
        "pip failed a TLS certificate check: a proxy or "
        "missing certificates; set 'Extra pip arguments' (e.g. --cert FILE)",
    ),
    (
        re.compile(r"MemoryError|Killed", re.I),
        "the machine ran out of memory during the install: close other programs and try again",
    ),
]


def diagnose(step: str, returncode: int, log_tail: list[str]) -> str:
    """One sentence for a failed step: the first known cause in its output, else pip's last error line."""
    text = "\n".join(log_tail)
    for pattern, advice in _DIAGNOSES:
        if pattern.search(text):
            return f"Set-up failed at '{step}': {advice}"
    errors = [ln.strip() for ln in log_tail if ln.strip().startswith(("ERROR", "error:", "Error"))]
    last = errors[-1] if errors else next((ln.strip() for ln in reversed(log_tail) if ln.strip()), "")
    return f"Set-up failed at '{step}' (exit code {returncode}): {last or 'no output'}"


def disk_problem(target: Path, torch: TorchVariant) -> str | None:
    """A sentence when the disk under ``target`` lacks room for the environment, else None."""
    probe = target
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    need = NEEDED_BYTES[torch]
    if free < need:
        return (
            f"Not enough disk space at {probe}: {free / 1024**3:.1f} GB free, the {torch.upper()} backend "
            f"needs about {need / 1024**3:.0f} GB; free some space or choose another environment folder"
        )
    return None


@dataclass
class SetupJob:
    """Runs a plan's steps in a background thread; the UI reads ``state``, ``log`` and ``message``."""

    plan: SetupPlan
    max_log_lines: int = 400
    state: Literal["idle", "running", "ok", "failed", "cancelled"] = "idle"
    message: str = ""
    report: InstallReport | None = None
    log: deque[str] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _proc: subprocess.Popen[str] | None = field(default=None, repr=False)
    _cancel: bool = field(default=False, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        if self.state == "running":
            return
        self.state, self.message, self.report, self._cancel = "running", "", None, False
        self._thread = threading.Thread(target=self._run, name="compact-sdf-setup", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def wait(self, timeout: float | None = None) -> str:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state

    def lines(self, last: int | None = None) -> list[str]:
        with self._lock:
            items = list(self.log)
        return items[-last:] if last else items

    def _append(self, line: str) -> None:
        with self._lock:
            self.log.append(line.rstrip())
            while len(self.log) > self.max_log_lines:
                self.log.popleft()

    def _finish(self, state: Literal["ok", "failed", "cancelled"], message: str) -> None:
        self._append(message)
        self.message = message
        self.state = state

    def _run(self) -> None:
        try:
            problem = disk_problem(self.plan.venv_dir, self.plan.torch) if self.plan.install_torch else None
            if problem:
                self._finish("failed", problem)
                return
            for step in plan_steps(self.plan):
                rc, tail = self._run_step(step) if not self._cancel else (1, [])
                if self._cancel:
                    self._finish("cancelled", f"Set-up cancelled during '{step.label}'")
                    return
                if rc != 0:
                    self._finish("failed", diagnose(step.label, rc, tail))
                    return
            self._check()
        except OSError as exc:  # a missing interpreter, an unwritable folder
            self._finish(
                "failed", f"Set-up failed: {exc.strerror or exc} ({exc.filename or ''})".rstrip(" ()")
            )

    def _run_step(self, step: Step) -> tuple[int, list[str]]:
        self._append(f"$ {' '.join(step.argv)}")
        tail: deque[str] = deque(maxlen=60)
        self._proc = subprocess.Popen(
            step.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=clean_env(),
        )
        if self._cancel:  # cancel() came between the check above and Popen: it could not see this process
            self._proc.terminate()
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._append(line)
            tail.append(line.rstrip())
        return self._proc.wait(), list(tail)

    def _check(self) -> None:
        self.report = parse_check(self.lines())
        if self.report is None:
            self._finish("failed", "Set-up finished but the check printed nothing: see the log")
            return
        mismatch = torch_mismatch(self.report, self.plan.torch)
        summary = (
            f"Backend {self.report.backend} ready with torch {self.report.torch} "
            f"({'CUDA ' + self.report.cuda_build if self.report.cuda_build else 'CPU'})"
        )
        if mismatch and self.plan.torch == "cuda" and self.report.cuda_build is None:
            self._finish("failed", mismatch)
        else:
            self._finish("ok", f"{summary}. {mismatch}" if mismatch else summary)


def default_base_python() -> Path:
    """Blender's own interpreter: inside Blender ``sys.executable`` is its bundled Python."""
    return Path(sys.executable)
