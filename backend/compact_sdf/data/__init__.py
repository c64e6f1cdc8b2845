"""Mesh to training samples: load, validate, normalise, sample with exact signed distances, cache.

``prepare_mesh`` is the one entry point the CLI, the service and the add-on use.
"""

from __future__ import annotations

from pathlib import Path

import trimesh

from compact_sdf.config import SamplingConfig
from compact_sdf.data.cache import load_or_prepare
from compact_sdf.data.load import load_mesh
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.data.validate import require_valid, validate_mesh
from compact_sdf.progress import Progress
from compact_sdf.surface_figures import figures

__all__ = ["ShapeSamples", "prepare_mesh"]


def prepare_mesh(
    source: str | Path | trimesh.Trimesh,
    name: str | None = None,
    cfg: SamplingConfig = SamplingConfig(),
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> ShapeSamples:
    """Path or mesh -> validated (refused unless ok) -> cached or freshly prepared samples.

    The name defaults to the file's stem ("mesh" for an in-memory mesh without a name).
    """
    if isinstance(source, trimesh.Trimesh):
        mesh, default = source, "mesh"
    else:
        mesh, default = load_mesh(source), Path(source).stem
    name = name or default
    report = validate_mesh(mesh, cfg, name)
    require_valid(report)
    samples = load_or_prepare(mesh, name, cfg, cache_dir, progress)
    samples.report = report
    samples.figures = figures(mesh)
    return samples
