"""Shared pieces of the service tests: the add-on's client/launcher (loaded without Blender) and small meshes.

``addon/__init__.py`` imports bpy; the client and launcher do not, so they are loaded as members of a
stand-in package that points at ``addon/`` without running its ``__init__``.
"""

from __future__ import annotations

import importlib
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

REPO = Path(__file__).resolve().parents[1]
_PKG = "_compact_sdf_addon_under_test"

# Small enough for a few seconds of training on a busy 2-core CPU, with checkpoints to resume from.
FAST_TRAIN = {
    "train.steps": 30,
    "train.samples_per_shape": 500,
    "train.checkpoint_every": 10,
    "train.log_every": 5,
}
# One torch thread: the HTTP threads and other processes on a small machine keep a core.
SERVER_ARGS = ("--torch-threads", "1", "--log-level", "warning")


def addon_module(name: str) -> types.ModuleType:
    """``addon.<name>`` imported with relative imports working but without bpy."""
    if _PKG not in sys.modules:
        pkg = types.ModuleType(_PKG)
        pkg.__path__ = [str(REPO / "addon")]
        sys.modules[_PKG] = pkg
    return importlib.import_module(f"{_PKG}.{name}")


def start_backend(data_dir: Path, *extra: str, timeout: float = 120.0) -> Any:
    launcher = addon_module("launcher")
    backend = launcher.LocalBackend(sys.executable, data_dir, extra_args=(*SERVER_ARGS, *extra))
    return backend.start(timeout=timeout)


def sphere(subdivisions: int = 2, radius: float = 0.5) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)


def arrays(mesh: trimesh.Trimesh) -> tuple[list[list[float]], list[list[int]]]:
    return np.asarray(mesh.vertices).tolist(), np.asarray(mesh.faces).tolist()


def trained_ball(api: Any) -> tuple[str, str]:
    """Upload a ball and train a tiny model on it to the end: (mesh id, model id)."""
    ball = api.upload_arrays("ball", *arrays(sphere()))
    job = api.create_job("train", mesh_ids=[ball["id"]], preset="tiny", overrides=FAST_TRAIN)
    done = api.wait_job(job["id"], timeout=300)
    assert done["status"] == "succeeded", done["error"]
    return ball["id"], job["model_id"]


def ply_bytes(mesh: trimesh.Trimesh) -> bytes:
    return bytes(mesh.export(file_type="ply"))


def wait_for(predicate: Any, timeout: float, poll: float = 0.1, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
