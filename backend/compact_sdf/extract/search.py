"""Hierarchical search for the lattice cells near the zero level set of s_g (sparse extraction).

What it finds. On the lattice of ``N`` cells per side, every cell that holds a point with
``|s_g| <= width`` or a sign change of ``s_g`` (``width = 0``: the cells ``s_g`` crosses), with
exact ``s_g`` values on all their corners. The band may be one-sided (``-inside <= s_g <= width``,
what a join of parts needs): then the rules below use ``width`` for positive and ``inside`` for
negative values.

How. ``s_g`` is evaluated on a coarse lattice (``cfg.coarse_cells`` per side) and refined by
halving the cell size up to ``N``. A cell is dropped, with everything inside it, when all its
corners have the same strict sign and one corner has ``|s| > L * d + width`` (``d`` the cell
diagonal): for an L-Lipschitz field every point of the cell then keeps that sign and has
``|s| > width``, so nothing the search looks for hides inside (thin parts included, unlike a
corner sign test). The same bound, applied to each child from its parent's corners before the
child is evaluated, drops most children far from the surface without evaluating them.

The assumption, checked at run time. ``L`` starts at ``cfg.lipschitz`` (1.5: a distance field has
slope 1; the edges of trained ``preview`` s_g were measured at 1.9-2.7, fidelity.md). After
each level the search measures the steepest slope ``|s(a) - s(b)| / h`` over every lattice edge
whose two ends it has evaluated. Where that exceeds the ``L`` the search has used, earlier drops
may be wrong, so it starts again with ``L`` widened to ``SLOPE_MARGIN`` times the measured slope;
after ``MAX_WIDENINGS`` passes it drops nothing (a dense search). A pass re-evaluates no vertex
(``Memo``), so another pass costs little where the dense one costs the whole lattice: trained s_g
of thin-walled CAD parts at ``preview`` needed a third pass, and making that one dense cost a
slider tick near them 2-4x its time at N = 128 for the same mesh (docs/benchmarks/interactive.md).
A field much steeper than its lattice edges show between evaluated vertices can still defeat
this; measured slopes are the only evidence a sampled search has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from compact_sdf.config import ExtractConfig
from compact_sdf.extract.lattice import CORNERS, FieldFn, Lattice, cell_corners, corner_views, evaluate

SLOPE_MARGIN = 1.25  # the widened bound over the steepest slope measured
MAX_WIDENINGS = 5  # passes with a measured bound; then L = inf: nothing is dropped


@dataclass
class Surface:
    cells: np.ndarray  # bool (N)^3: cells that may hold |s_g| <= width or a crossing; exact corners
    field: np.ndarray  # float32 (N+1)^3: s_g where it was evaluated (any level), NaN elsewhere
    sign: np.ndarray  # int8 (N+1)^3: the sign of s_g everywhere (exact where evaluated)
    lipschitz: float  # the bound the search ended with (cfg.lipschitz unless widened)

    @property
    def crossed(self) -> np.ndarray:
        """Bool (N)^3: the kept cells whose corners are not all of one strict sign."""
        return self.cells & ~same_sign(self.field)


def level_sizes(resolution: int, coarse_cells: int) -> list[int]:
    """Cells per side of each refinement level, coarse to fine, halving while N stays divisible."""
    sizes = [resolution]
    while sizes[-1] % 2 == 0 and sizes[-1] // 2 >= coarse_cells:
        sizes.append(sizes[-1] // 2)
    return sizes[::-1]


def _sign(values: np.ndarray) -> np.ndarray:
    return np.where(values >= 0.0, 1, -1).astype(np.int8)


def same_sign(field: np.ndarray) -> np.ndarray:
    """Bool per cell: all 8 corners > 0 or all < 0 (NaN corners count as neither)."""
    views = corner_views(field)
    positive = np.logical_and.reduce([v > 0.0 for v in views])
    negative = np.logical_and.reduce([v < 0.0 for v in views])
    return positive | negative


def _beyond(value: np.ndarray, margin: float | np.ndarray, widths: tuple[float, float]) -> np.ndarray:
    """Values further than ``margin`` past the band ``-widths[1] <= s <= widths[0]`` (NaN: never).
    Thresholds are compared in the values' precision, as a scalar margin is."""
    upper = np.asarray(margin + widths[0]).astype(value.dtype)
    lower = np.asarray(-(margin + widths[1])).astype(value.dtype)
    return (value > upper) | (value < lower)


def _keep_cells(
    field: np.ndarray, cells: np.ndarray, margin: float, widths: tuple[float, float]
) -> np.ndarray:
    """``cells`` less those the rule of the module docstring drops (``margin = L * d``); only the
    marked cells are read, so a level costs what its kept cells cost, not the whole lattice."""
    index = np.flatnonzero(cells)
    values = _corner_values(field, index, cells.shape[0])
    drop = _same_sign_rows(values) & _any8(_beyond(values, margin, widths))
    out = cells.copy()
    out.flat[index[drop]] = False
    return out


def _corner_values(field: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """(K, 8) values of ``field`` ((n+1)^3) at the corners of the cells with flat indices ``index``
    in an (n)^3 array, in ``CORNERS`` order."""
    i, j, k = np.unravel_index(index, (n, n, n))
    side = n + 1
    base = (i * side + j) * side + k
    offsets = (CORNERS[:, 0] * side + CORNERS[:, 1]) * side + CORNERS[:, 2]
    return field.ravel()[base[:, None] + offsets[None, :]]


def _same_sign_rows(values: np.ndarray) -> np.ndarray:
    """Per row: all values > 0 or all < 0 (NaN counts as neither), as ``same_sign``."""
    return _all8(values > 0.0) | _all8(values < 0.0)


_ONES8 = np.frombuffer(np.ones(8, dtype=bool).tobytes(), dtype=np.uint64)[0]


def _any8(flags: np.ndarray) -> np.ndarray:
    """``flags.any(axis=-1)`` for a last axis of 8 bools, read as one 64-bit word per row (numpy's
    reduction over a short axis costs more than the comparisons that made it)."""
    return np.ascontiguousarray(flags).view(np.uint64)[..., 0] != 0


def _all8(flags: np.ndarray) -> np.ndarray:
    """``flags.all(axis=-1)`` for a last axis of 8 bools (see ``_any8``)."""
    return np.ascontiguousarray(flags).view(np.uint64)[..., 0] == _ONES8


def _refine(a: np.ndarray, cut: int) -> np.ndarray:
    """Nearest-lower upsampling by 2 along every axis, cut to ``cut`` entries per side."""
    for axis in range(3):
        a = np.repeat(a, 2, axis=axis)
    return a[:cut, :cut, :cut]


def _children_kept(
    parent_field: np.ndarray,
    parents: np.ndarray,
    fine: Lattice,
    lipschitz: float,
    widths: tuple[float, float],
) -> np.ndarray:
    """Bool (2n)^3: children of the kept ``parents`` that their parent's corners cannot rule out.

    A parent corner ``q`` with ``|s(q)| > L * r + width`` (``r`` its largest distance to a child,
    one or two child sides per axis) settles that whole child as the cell rule does; a parent
    whose corners disagree in sign keeps all its children. Only the kept parents are read.
    """
    n = parents.shape[0]
    index = np.flatnonzero(parents)
    values = _corner_values(parent_field, index, n)
    # reach[o, q]: from parent corner q to the far side of the child at offset o
    same = (CORNERS[:, None, :] == CORNERS[None, :, :]).sum(axis=2)
    reach = (2.0 / fine.cells) * np.sqrt(same + 4.0 * (3 - same))
    ruled_out = _any8(_beyond(values[:, None, :], lipschitz * reach[None, :, :], widths))
    kept = ~(_same_sign_rows(values)[:, None] & ruled_out)  # (K, 8 children)
    out = np.zeros((fine.cells,) * 3, dtype=bool)
    parent_ijk = np.stack(np.unravel_index(index, (n, n, n)), axis=1)
    for c, o in enumerate(CORNERS):
        child = 2 * parent_ijk[kept[:, c]] + o
        out[tuple(child.T)] = True
    return out


def _output_vertices(
    field: np.ndarray,
    sign: np.ndarray,
    kept: np.ndarray,
    crossing: np.ndarray,
    lipschitz: float,
    widths: tuple[float, float],
) -> np.ndarray:
    """Bool (N+1)^3: the output-level vertices to evaluate, given their parents' values in
    ``field[::2, ::2, ::2]`` (``kept``: the children that may hold the band; ``crossing``: those that
    may hold a zero).

    What extraction reads at the output level is the corners of the crossed cells and the vertices
    with ``s`` in the band, not every point of a cell. So every corner of a possibly crossed cell is
    evaluated, and of the other corners of the kept cells only those no parent corner ``q`` rules
    out by ``|s(q)| > L * |v - q| + width`` (``|v - q|`` is 1 to 1.7 output voxels, where the cell
    rule pays a whole parent diagonal): such a vertex takes ``q``'s sign into ``sign``, which the
    bound proves. At N = 128 this evaluates about 30% fewer vertices.
    """
    parent = field[::2, ::2, ::2]
    crossed_corners = cell_corners(crossing)
    where = np.argwhere(cell_corners(kept) & ~crossed_corners & np.isnan(field))
    odd = where % 2
    reach = np.sqrt(odd.sum(axis=1)) * (2.0 / (field.shape[0] - 1))
    open_ = np.ones(len(where), dtype=bool)  # not ruled out yet
    for o in CORNERS:
        q = parent[tuple(np.minimum((where + o * odd) // 2, parent.shape[0] - 1).T)]
        with np.errstate(invalid="ignore"):  # NaN: a parent corner not evaluated rules out nothing
            margin = lipschitz * reach + np.where(q > 0, widths[0], widths[1])
            settled = open_ & (np.abs(q) > margin)
        sign[tuple(where[settled].T)] = _sign(q[settled])
        open_ &= ~settled
    out = crossed_corners & np.isnan(field)
    out[tuple(where[open_].T)] = True
    return out


def steepest_slope(field: np.ndarray, cells: int) -> float:
    """Largest ``|s(a) - s(b)| / h`` over lattice edges with both ends evaluated (non-NaN); 0 if none."""
    steepest = 0.0
    for axis in range(3):
        diff = np.fmax.reduce(np.abs(np.diff(field, axis=axis)), axis=None)
        if np.isfinite(diff):
            steepest = max(steepest, float(diff))
    return steepest * cells / 2.0


def _slope_around(field: np.ndarray, index: np.ndarray, cells: int) -> float:
    """``steepest_slope`` over the edges at the vertices with flat indices ``index`` only: after a
    refinement every edge with both ends evaluated has a newly evaluated end (the carried vertices
    lie two steps apart), so these edges are all of them."""
    side = field.shape[0]
    flat = field.ravel()
    values = flat[index]
    steepest = 0.0
    for stride in (side * side, side, 1):
        coord = (index // stride) % side
        for step in (-1, 1):
            ok = (coord + step >= 0) & (coord + step < side)
            if ok.any():
                diff = np.fmax.reduce(np.abs(flat[index[ok] + step * stride] - values[ok]))
                if np.isfinite(diff):
                    steepest = max(steepest, float(diff))
    return steepest * cells / 2.0


class Memo:
    """s_g values already evaluated on the output lattice, so a search that starts again with a
    wider bound (or a wider width) re-evaluates no vertex: coarse levels are sub-lattices of it."""

    def __init__(
        self, gen_fn: FieldFn, cfg: ExtractConfig, device: torch.device | str, known: np.ndarray | None = None
    ) -> None:
        """``known``: (N+1)^3 float32 values evaluated elsewhere (NaN where not), taken as they are."""
        self.gen_fn, self.cfg, self.device = gen_fn, cfg, device
        shape = (cfg.resolution + 1,) * 3
        self.values = np.full(shape, np.nan, dtype=np.float32) if known is None else known.reshape(shape)

    def __call__(self, lat: Lattice, ijk: np.ndarray) -> np.ndarray:
        """s_g at integer coordinates ``ijk`` of ``lat`` (whose cells divide the output lattice's)."""
        at = tuple((ijk * (self.cfg.resolution // lat.cells)).T)
        values = self.values[at]
        todo = np.isnan(values)
        if todo.any():
            values[todo] = evaluate(self.gen_fn, lat.points(ijk[todo]), self.cfg.batch_points, self.device)
            self.values[tuple(a[todo] for a in at)] = values[todo]
        return values


def _search(memo: Memo, widths: tuple[float, float], lipschitz: float) -> tuple[Surface, float]:
    """One pass with bound ``lipschitz``; also the steepest slope seen (stops early past the bound)."""
    cfg = memo.cfg
    sizes = level_sizes(cfg.resolution, cfg.coarse_cells)
    lat = Lattice(sizes[0])
    grid = np.indices((lat.side,) * 3).reshape(3, -1).T
    field = memo(lat, grid).reshape((lat.side,) * 3)
    sign = _sign(field)
    cells = _keep_cells(field, np.ones((lat.cells,) * 3, dtype=bool), lat.cell_diagonal() * lipschitz, widths)
    slope = steepest_slope(field, lat.cells)
    for cells_per_side in sizes[1:]:
        if slope > lipschitz:
            break
        fine = Lattice(cells_per_side)
        carried = np.full((fine.side,) * 3, np.nan, dtype=np.float32)
        carried[::2, ::2, ::2] = field
        field, parents = carried, cells
        sign = _refine(sign, fine.side)
        cells = _children_kept(field[::2, ::2, ::2], parents, fine, lipschitz, widths)
        if cells_per_side == cfg.resolution:  # the output level: see ``_output_vertices``
            crossing = _children_kept(field[::2, ::2, ::2], parents, fine, lipschitz, (0.0, 0.0))
            missing = _output_vertices(field, sign, cells, crossing, lipschitz, widths)
            cells, widths = crossing, (0.0, 0.0)
        else:
            missing = cell_corners(cells) & np.isnan(field)
        index = np.flatnonzero(missing)
        values = memo(fine, np.stack(np.unravel_index(index, missing.shape), axis=1))
        field.flat[index] = values
        sign.flat[index] = _sign(values)
        cells = _keep_cells(field, cells, fine.cell_diagonal() * lipschitz, widths)
        slope = max(slope, _slope_around(field, index, fine.cells))
        lat = fine
    return Surface(cells, field, sign, lipschitz), slope


def find_surface(
    gen_fn: FieldFn | Memo,
    cfg: ExtractConfig,
    device: torch.device | str,
    width: float = 0.0,
    lipschitz: float | None = None,
    inside: float | None = None,
) -> Surface:
    """The cells of the module docstring, with the Lipschitz bound checked and widened as needed.

    At the output level a cell is kept when it may hold ``-inside <= s <= width`` (``inside``
    defaults to ``width``) within one cell diagonal times ``L``; callers select from ``cells`` with
    exact corner values (``crossed``, ``|s| <= width``). Pass a ``Memo`` (and the bound an earlier
    search ended with) to search again without re-evaluating what that search evaluated.
    """
    memo = gen_fn if isinstance(gen_fn, Memo) else Memo(gen_fn, cfg, device)
    bound = cfg.lipschitz if lipschitz is None else lipschitz
    widths = (width, width if inside is None else inside)
    for _ in range(MAX_WIDENINGS):
        surface, slope = _search(memo, widths, bound)
        if slope <= bound:
            return surface
        bound = SLOPE_MARGIN * slope
    return _search(memo, widths, float("inf"))[0]
