"""Shared by the benches that study one shape's fused field on a dense lattice against its source
(handle_sites.py, handle_closing.py): the common options, the model, the field and the GT mesh."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
MESHES = REPO.parent / "shared" / "meshes"


def add_shape_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--shape", required=True)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--mesh-dir", type=Path, default=MESHES)


def load(args: argparse.Namespace) -> Any:
    """The model (one torch thread: these benches run beside others)."""
    from compact_sdf.checkpoint import load_model

    torch.set_num_threads(1)
    return load_model(args.model)


def dense_fused(loaded: Any, shape: str, n: int) -> np.ndarray:
    """The fused field of ``shape`` on the full (n+1)^3 lattice, as the extraction defines it."""
    from compact_sdf.extract.dense import dense_fused_volume

    model, z = loaded.model, loaded.code(shape)
    with torch.no_grad():
        return dense_fused_volume(
            lambda x: model.sdf_gen(z, x),
            lambda x: model.sdf_ovf(z, x),
            replace(loaded.config.extract, resolution=n),
            "cpu",
            band_width=loaded.config.sampling.band_width,
        )


def source_mesh(loaded: Any, shape: str, mesh_dir: Path) -> Any:
    """The source mesh in the model's normalised coordinates."""
    from compact_sdf.data.load import load_mesh
    from compact_sdf.metrics import normalized

    norm = loaded.shapes[loaded.shape_index(shape)].normalization
    return normalized(load_mesh(mesh_dir / f"{shape}.ply"), norm)
