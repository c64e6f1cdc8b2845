"""The fused field and its mesh where the model runs: search, band, both networks and marching
cubes as tensor operations on the model's device, nothing the size of the lattice on the CPU.

Why a second path. On a GPU the networks are a fraction of the time of ``fusion.extract_field``:
its lattice arrays live in numpy, so every level of the search, the band's masks, the blocks of
marching cubes and their merge run on the CPU (an H200 spent 30 s on an N = 512 mesh whose
network work was about 0.1 s). Here the same definition (``fusion`` module docstring; the dense
reference is ``dense.dense_fused_volume``) is computed with tensors, and only the mesh comes back.
On the CPU the numpy path stays the default: it evaluates about 30% fewer s_g points at the output
level (``search._output_vertices``), and there the network is the cost.

What differs from the numpy path, none of it in the field: the search keeps lists of cells
instead of lattice masks and evaluates every corner of a kept output cell; the slope it checks is
measured on the kept cells' edges; marching cubes is ``tensor_march`` (same vertices as
scikit-image, another triangulation inside a few ambiguous cells). The join of pinched parts and
the closing of shallow handles walk the lattice on the CPU, so a request that needs them takes the
numpy path (``fusion.extract_field`` decides).
"""

from __future__ import annotations

import numpy as np
import torch

from compact_sdf.config import ExtractConfig
from compact_sdf.extract.lattice import CORNERS, FieldFn, evaluate_tensor
from compact_sdf.extract.mesh import MeshArrays
from compact_sdf.extract.search import MAX_WIDENINGS, SLOPE_MARGIN, level_sizes
from compact_sdf.extract.tensor_march import EDGES, march_cells
from compact_sdf.progress import Progress
from compact_sdf.trained_region import USE_WITHIN, TrainedRegion


def chosen(cfg: ExtractConfig, device: torch.device | str) -> bool:
    """Whether ``cfg.meshing`` puts the lattice work on the device (``auto``: on CUDA only)."""
    return cfg.meshing == "tensors" or (cfg.meshing == "auto" and torch.device(device).type == "cuda")


class LatticeMemo:
    """One field's values on the output lattice (flat, NaN where not evaluated), on the device."""

    def __init__(self, fn: FieldFn, cfg: ExtractConfig, device: torch.device | str) -> None:
        self.fn, self.cfg = fn, cfg
        self.side = cfg.resolution + 1
        self.values = torch.full((self.side**3,), float("nan"), device=device)

    def points(self, ids: torch.Tensor) -> torch.Tensor:
        """Unit-cube positions of flat vertex ids, by ``Lattice.points``' formula."""
        ijk = torch.stack([ids // self.side**2, ids // self.side % self.side, ids % self.side], dim=1)
        return (ijk.double() * (2.0 / self.cfg.resolution) - 1.0).float()

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        """The field at flat vertex ids (no repeats), evaluating only the ones not known yet."""
        values = self.values[ids]
        todo = values.isnan()
        if bool(todo.any()):
            new = evaluate_tensor(self.fn, self.points(ids[todo]), self.cfg.batch_points)
            values[todo] = new
            self.values[ids[todo]] = new
        return values


def _corner_ids(cells: torch.Tensor, stride: int, side: int) -> torch.Tensor:
    """(K, 8) flat output-lattice ids of the corners of cells given on a lattice ``stride`` coarser."""
    ijk = (cells[:, None, :] + torch.from_numpy(CORNERS).to(cells.device)) * stride
    return (ijk[..., 0] * side + ijk[..., 1]) * side + ijk[..., 2]


def _corner_values(memo: LatticeMemo, cells: torch.Tensor, stride: int) -> torch.Tensor:
    """(K, 8) field values at the cells' corners, each vertex evaluated once."""
    unique, inverse = torch.unique(_corner_ids(cells, stride, memo.side), return_inverse=True)
    return memo(unique)[inverse]


def _beyond(values: torch.Tensor, margin: torch.Tensor | float, widths: tuple[float, float]) -> torch.Tensor:
    """Values further than ``margin`` past the band ``-widths[1] <= s <= widths[0]``."""
    return (values > margin + widths[0]) | (values < -(margin + widths[1]))


def _same_sign(values: torch.Tensor) -> torch.Tensor:
    return (values > 0).all(dim=-1) | (values < 0).all(dim=-1)


def _children(
    cells: torch.Tensor, values: torch.Tensor, fine: int, lipschitz: float, widths: tuple[float, float]
) -> torch.Tensor:
    """Children of the kept cells their parent's corners cannot rule out (``search._children_kept``)."""
    corners = torch.from_numpy(CORNERS).to(cells.device)
    same = (corners[:, None, :] == corners[None, :, :]).sum(dim=2).double()
    reach = ((2.0 / fine) * torch.sqrt(same + 4.0 * (3 - same))).to(values.dtype)  # [child, corner]
    ruled_out = _beyond(values[:, None, :], lipschitz * reach[None], widths).any(dim=2)
    kept = ~(_same_sign(values)[:, None] & ruled_out)  # (K, 8 children)
    parent, child = torch.nonzero(kept, as_tuple=True)
    return 2 * cells[parent] + corners[child]


def _edge_slope(values: torch.Tensor, cells: int) -> float:
    """Steepest ``|s(a) - s(b)| / h`` over the edges of cells with these (K, 8) corner values."""
    if len(values) == 0:
        return 0.0
    edges = torch.from_numpy(EDGES).to(values.device)
    return float((values[:, edges[:, 0]] - values[:, edges[:, 1]]).abs().max()) * cells / 2.0


def _search(
    memo: LatticeMemo, widths: tuple[float, float], lipschitz: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Output cells that may hold ``-widths[1] <= s <= widths[0]`` or a crossing, with their corner
    values, and the steepest slope seen (the pass stops once it exceeds ``lipschitz``)."""
    cfg = memo.cfg
    sizes = level_sizes(cfg.resolution, cfg.coarse_cells)
    device = memo.values.device
    axis = torch.arange(sizes[0], device=device)
    cells = torch.cartesian_prod(axis, axis, axis).reshape(-1, 3)
    values = torch.empty((0, 8), device=device)
    slope = 0.0
    for level, n in enumerate(sizes):
        if level > 0:
            cells = _children(cells, values, n, lipschitz, widths)
        values = _corner_values(memo, cells, cfg.resolution // n)
        slope = max(slope, _edge_slope(values, n))
        if slope > lipschitz:
            break
        keep = ~(_same_sign(values) & _beyond(values, lipschitz * np.sqrt(3.0) * 2.0 / n, widths).any(dim=1))
        cells, values = cells[keep], values[keep]
    return cells, values, slope


def find_band_cells(memo: LatticeMemo, width: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``_search`` with the Lipschitz bound checked and widened as ``search.find_surface`` does."""
    bound = memo.cfg.lipschitz
    for _ in range(MAX_WIDENINGS):
        cells, values, slope = _search(memo, (width, width), bound)
        if slope <= bound:
            return cells, values
        bound = SLOPE_MARGIN * slope
    cells, values, _ = _search(memo, (width, width), float("inf"))
    return cells, values


def _dilate(mask: torch.Tensor) -> torch.Tensor:
    """Every vertex within Chebyshev distance 1 of a marked one (a 3x3x3 box, axis by axis)."""
    out = mask.clone()
    for axis in range(3):
        src = out.clone()
        n = src.shape[axis]
        out.narrow(axis, 1, n - 1).logical_or_(src.narrow(axis, 0, n - 1))
        out.narrow(axis, 0, n - 1).logical_or_(src.narrow(axis, 1, n - 1))
    return out


def _touching(mask: torch.Tensor) -> torch.Tensor:
    """Bool (N)^3: the cells with a corner marked in the (N+1)^3 ``mask``."""
    for axis in range(3):
        n = mask.shape[axis]
        mask = mask.narrow(axis, 0, n - 1) | mask.narrow(axis, 1, n - 1)
    return mask


def _region_mask(region: TrainedRegion, resolution: int, device: torch.device) -> torch.Tensor:
    """``region.lattice_mask`` gathered on the device from the record's small grid (<= 128^3)."""
    cells = torch.from_numpy(region.cells_within(USE_WITHIN)).to(device)
    index = torch.from_numpy(region.lattice_index(resolution)).to(device)
    return cells[index][:, index][:, :, index]


def fused_mesh(
    memo: LatticeMemo,
    ovf_fn: FieldFn | None,
    width: float,
    region: TrainedRegion | None,
    report: Progress,
) -> MeshArrays:
    """The marching-cubes mesh of ``fusion.extract_field``'s field, before its clean-up of closed
    parts, computed where ``memo`` (s_g on the output lattice) lives; ``memo`` keeps every s_g value
    evaluated, for a caller that goes on with them. ``width``: the distance fusion's half-width (0
    for s_g alone or the paper's fusion, whose ``cfg.band`` layers are dilated here)."""
    cfg = memo.cfg
    n, side = cfg.resolution, cfg.resolution + 1
    report("coarse surface", 0.0)
    cells, values = find_band_cells(memo, width)
    report("band", 0.4)
    crossed = cells[~_same_sign(values)]
    band = torch.zeros(side**3, dtype=torch.bool, device=memo.values.device)
    band[_corner_ids(crossed, 1, side).reshape(-1)] = True
    band = band.reshape((side,) * 3)
    if ovf_fn is not None and cfg.fusion == "paper":
        for _ in range(cfg.band):
            band = _dilate(band)
    elif ovf_fn is not None:
        band |= (memo.values <= width).reshape(band.shape) & (memo.values >= -width).reshape(band.shape)
        if region is not None:
            band |= _region_mask(region, n, band.device)
    near = _dilate(band).reshape(-1)
    fused = memo.values
    if ovf_fn is not None:
        shell = torch.nonzero(near & ~band.reshape(-1)).reshape(-1)
        memo(shell)
        fused = memo.values.clone()
        inside = torch.nonzero(band.reshape(-1)).reshape(-1)
        fused[inside] = evaluate_tensor(ovf_fn, memo.points(inside), cfg.batch_points)
    else:
        memo(torch.nonzero(near).reshape(-1))
    report("marching cubes", 0.8)
    march = torch.nonzero(_touching(band))
    corner_values = fused[_corner_ids(march, 1, side)]
    negative = corner_values < 0
    crossed_fused = negative.any(dim=1) & ~negative.all(dim=1)
    verts, faces = march_cells(march[crossed_fused], corner_values[crossed_fused], n)
    return MeshArrays.from_lattice(verts, faces, n)
