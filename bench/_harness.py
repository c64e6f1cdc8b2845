"""The one harness every benchmark runs on, so that their figures are comparable and reproducible.

It loads a model, gives a shape's ground truth in the model's frame, computes a mesh's figures with
the product's own functions (``compact_sdf.surface_figures.shape_stats``: genus, components, manifold) and
writes JSON results that record the machine and its load, because a shared machine's times
measure its neighbours too. Benchmarks import it as ``_harness`` (run them as ``python bench/X.py``).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import trimesh
    from compact_sdf.checkpoint import LoadedModel
    from compact_sdf.data.normalize import Normalization

REPO = Path(__file__).resolve().parents[1]
# The real meshes the benchmarks use; COMPACT_SDF_MESHES points elsewhere.
MESHES = Path(os.environ.get("COMPACT_SDF_MESHES", REPO.parent / "shared" / "meshes"))
OUT = REPO / "out" / "bench"
CACHE = REPO / "out" / "cache"


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def peak_mb() -> float:
    """This process's peak resident memory in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    """What a result was measured on: CPU, cores, torch build, threads, GPU if any."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "gpu": gpu,
    }


def cpu_timer(seconds: float) -> Callable[[], bool]:
    """Stop after ``seconds`` of this process's CPU time: on a shared machine wall time measures the
    neighbours; with one torch thread, CPU seconds are the seconds one core would take alone."""
    end = time.process_time() + seconds
    return lambda: time.process_time() >= end


def open_model(model_dir: str | Path, device: str = "cpu") -> LoadedModel:
    """A trained model, loaded the way the product loads it."""
    from compact_sdf.checkpoint import load_model

    return load_model(model_dir, device=device)


def normalization(loaded: LoadedModel, name: str) -> Normalization:
    """Where the model placed shape ``name``: its own frame -> the unit cube."""
    return loaded.shapes[loaded.shape_index(name)].normalization


def ground_truth(loaded: LoadedModel, name: str, path: Path) -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    """The source mesh of shape ``name`` as it is, and in the model's (normalised) frame."""
    from compact_sdf.data.load import load_mesh
    from compact_sdf.metrics import normalized

    gt = load_mesh(path)
    return gt, normalized(gt, normalization(loaded, name))


def figures(mesh: trimesh.Trimesh) -> dict[str, Any]:
    """Area, components, genus, watertight and manifold, by the product's own definition."""
    from compact_sdf.surface_figures import shape_stats

    return shape_stats(mesh)


def write_results(path: Path, results: dict[str, Any], load_start: list[float] | None = None) -> Path:
    """Write ``results`` as JSON with the machine and the load at the start (if given) and now."""
    record = {**results, "machine": machine(), "load_end": load()}
    if load_start is not None:
        record["load_start"] = load_start
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path
