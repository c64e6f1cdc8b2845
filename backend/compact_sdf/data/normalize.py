"""Map a mesh into the model's unit cube and back.

The network only sees [-1,1]^3; each shape is centred on its bounding-box centre and scaled so
its longest side is 1.8 (into [-0.9,0.9]), leaving a margin for the far field. The transform is
kept with the model so reconstructions go back to the object's own space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

EXTENT = 0.9  # half of the longest side after normalisation


@dataclass(frozen=True)
class Normalization:
    center: tuple[float, float, float]
    scale: float

    @classmethod
    def fit(cls, vertices: np.ndarray, extent: float = EXTENT) -> Normalization:
        """Centre the bounding box and scale its longest side to ``2 * extent``."""
        v = np.asarray(vertices, dtype=np.float64)
        lo, hi = v.min(axis=0), v.max(axis=0)
        longest = float((hi - lo).max())
        if not np.isfinite(longest) or longest <= 0.0:
            raise ValueError("cannot normalise a mesh with zero or non-finite extent")
        center = (lo + hi) / 2.0
        return cls(
            center=(float(center[0]), float(center[1]), float(center[2])), scale=2.0 * extent / longest
        )

    def to_unit(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, dtype=np.float64) - np.asarray(self.center)) * self.scale

    def from_unit(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) / self.scale + np.asarray(self.center)

    def to_dict(self) -> dict[str, Any]:
        return {"center": list(self.center), "scale": self.scale}

    @classmethod
    def from_dict(cls, data: Any) -> Normalization:
        """Read one back; refuses (ValueError) anything but three finite centre numbers and a finite,
        positive scale, since a NaN or zero scale would turn every reconstructed vertex into NaN."""
        if not isinstance(data, dict) or not {"center", "scale"} <= set(data):
            raise ValueError("a normalisation must be an object with 'center' and 'scale'")
        c, scale = data["center"], data["scale"]
        if not isinstance(c, list | tuple) or len(c) != 3 or not all(_finite(x) for x in c):
            raise ValueError(f"a normalisation's center must be three finite numbers, not {str(c)[:40]!r}")
        if not _finite(scale) or scale <= 0:
            raise ValueError(
                f"a normalisation's scale must be a finite number above 0, not {str(scale)[:40]!r}"
            )
        return cls(center=(float(c[0]), float(c[1]), float(c[2])), scale=float(scale))


def _finite(value: Any) -> bool:
    return (
        isinstance(value, int | float | np.floating | np.integer)
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
    )
