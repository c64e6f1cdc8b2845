"""Where s_o was trained, shape by shape: recorded at training time, read by the distance fusion.

The distance fusion uses s_o where ``|s_g| <= width``: s_g stands in for "near the true surface",
where s_o had dense samples. That fails where s_g misses a part (thin walls, small through-holes
and thin wings at the CPU presets): s_o has those parts, but the band never reaches them. The
training set itself knows where the true surface is. A small lattice of R cells per side over
[-1,1]^3 (R = the training band's lattice, at most ``MAX_CELLS``) records for each of its points
the smallest ``|sdf|`` among the shape's s_o training samples nearest to that point (in the
cube of one cell centred on it, where the training lattice puts a sample), as uint8 in steps of
``band_width / STEPS_PER_BAND`` (255: no sample that close). A point looked up gets the entry of
its nearest lattice point, so the entry bounds its distance to the surface within half a cell
diagonal of a sample. The fusion then also uses
s_o on the cells with a sample within ``USE_WITHIN`` band widths, and keeps a closed part of the
fused surface when it passes through a cell with a sample within ``KEEP_WITHIN`` band widths
(``extract.dense.drop_band_artifacts``): s_o's far-field surfaces never come that close to a
training sample's surface, a real thin part always does.

Checkpoints written before this record have none; their shapes fuse as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

MAX_CELLS = 128  # cells per side at most: 2 MiB per shape
STEPS_PER_BAND = 64  # quantisation: 255 steps reach about 4 band widths
USE_WITHIN = 0.5  # band widths: s_o is used on cells with a training sample this close
KEEP_WITHIN = 0.25  # band widths: a closed part is kept if it passes through a cell this close


@dataclass(frozen=True)
class TrainedRegion:
    """One shape's record: ``grid`` uint8 (R, R, R) over [-1,1]^3, in steps of ``band_width / 64``
    (entry i for the lattice point -1 + 2i/R; the last point of each axis shares the entry before)."""

    grid: np.ndarray
    band_width: float

    def cells_within(self, bands: float) -> np.ndarray:
        """Bool (R, R, R): cells holding a training sample within ``bands`` band widths of the surface."""
        return self.grid <= bands * STEPS_PER_BAND

    def _index(self, coords: np.ndarray) -> np.ndarray:
        """Entry index of unit coordinates: their nearest lattice point (ties go up)."""
        cells = self.grid.shape[0]
        return np.clip(np.floor((coords + 1.0) * (cells / 2.0) + 0.5).astype(np.int64), 0, cells - 1)

    def near(self, points: np.ndarray, bands: float) -> np.ndarray:
        """Bool per point (unit coordinates): its entry holds a sample within ``bands`` band widths."""
        ijk = self._index(np.asarray(points, dtype=np.float64))
        return self.cells_within(bands)[ijk[:, 0], ijk[:, 1], ijk[:, 2]]

    def lattice_index(self, resolution: int) -> np.ndarray:
        """(N+1,) the record's entry of each extraction-lattice coordinate along one axis."""
        return self._index(-1.0 + 2.0 * np.arange(resolution + 1) / resolution)

    def lattice_mask(self, resolution: int, bands: float = USE_WITHIN) -> np.ndarray:
        """Bool (N+1)^3: the extraction lattice's vertices whose entry holds a sample that close."""
        index = self.lattice_index(resolution)
        return self.cells_within(bands)[np.ix_(index, index, index)]


def record(points: torch.Tensor, sdf: torch.Tensor, band_width: float, cells: int) -> TrainedRegion:
    """The record of one shape's s_o training samples (any device; the grid comes back on the CPU)."""
    ijk = ((points + 1.0) * (cells / 2.0) + 0.5).floor().long().clamp(0, cells - 1)
    flat = (ijk[:, 0] * cells + ijk[:, 1]) * cells + ijk[:, 2]
    steps = (sdf.abs() * (STEPS_PER_BAND / band_width)).ceil().clamp(max=255).to(torch.int32)
    grid = torch.full((cells**3,), 255, dtype=torch.int32, device=points.device)
    grid.scatter_reduce_(0, flat, steps, reduce="amin")
    return TrainedRegion(grid.to(torch.uint8).cpu().numpy().reshape((cells,) * 3), band_width)


def region_cells(fine_cells: int) -> int:
    """Cells per side of the record: the training band's lattice, at most ``MAX_CELLS``."""
    return min(MAX_CELLS, fine_cells)


def to_payload(regions: dict[str, TrainedRegion]) -> dict[str, Any]:
    """The checkpoint entry: one uint8 tensor per shape name (all share one band width)."""
    widths = {r.band_width for r in regions.values()}
    return {
        "band_width": float(widths.pop()) if widths else 0.0,
        "grids": {name: torch.from_numpy(r.grid.copy()) for name, r in regions.items()},
    }


def from_payload(entry: dict[str, Any] | None) -> dict[str, TrainedRegion]:
    """The records of a checkpoint; an old checkpoint (no entry) has none."""
    if not entry:
        return {}
    width = float(entry["band_width"])
    return {name: TrainedRegion(grid.numpy(), width) for name, grid in entry["grids"].items()}
