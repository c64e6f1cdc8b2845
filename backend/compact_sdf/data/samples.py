"""The prepared training set of one shape: what the data pipeline hands to training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from compact_sdf.data.normalize import Normalization


@dataclass
class ShapeSamples:
    """Points in normalised coordinates with exact signed distances (negative inside), float32.

    ``ovf_*`` is the bandwidth-constrained set of the overfitting branch, ``gen_*`` the
    surface-plus-uniform set of the generalization branch.
    """

    name: str
    mesh_hash: str
    normalization: Normalization
    ovf_points: np.ndarray  # (N, 3) float32
    ovf_sdf: np.ndarray  # (N,) float32
    gen_points: np.ndarray  # (M, 3) float32
    gen_sdf: np.ndarray  # (M,) float32
    report: Any = None  # the ValidationReport of the source mesh, when there was one
    figures: Any = None  # surface_figures.Figures of the source mesh (its own units), when closed

    def __post_init__(self) -> None:
        for label, pts, sdf in (
            ("ovf", self.ovf_points, self.ovf_sdf),
            ("gen", self.gen_points, self.gen_sdf),
        ):
            if pts.ndim != 2 or pts.shape[1] != 3 or sdf.shape != (pts.shape[0],):
                raise ValueError(f"{label} samples have shapes {pts.shape} and {sdf.shape}")
