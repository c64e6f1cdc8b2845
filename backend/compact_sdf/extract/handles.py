"""Close the handles the training lattice cannot resolve: shallow perforations and bridges.

Why: a wall about one training cell thick comes back perforated where the fused field misses its
sign by a small margin, and a gap that narrow comes back bridged (both branches wrong on their own
training points, docs/benchmarks/fidelity.md); each such site adds a handle. Nothing in the
field's values tells one of them from a true hole, but its *depth* does: a handle that closes by
changing only vertices whose value is below ``delta`` lives within ``delta`` of the level set, and
for ``delta`` up to a quarter of a training cell the ground truth's own lattice genus is not
robust either (the criterion of "the lattice can resolve it" in the thin-parts tables).

The rule, for ``delta`` = q/4, q/2, q (q = a quarter of a training cell, small to large so that
each site is tried on its own before nearby candidates join it), first on perforations (outside
vertices set inside) and then on bridges (the same on the negated field):

- candidates: outside vertices below ``delta`` that the union of line closings of the inside
  (13 lattice directions, 2 vertices each way) covers; a line, unlike a ball, also spans a hole in
  a wall one vertex thick;
- each 26-connected cluster of candidates is flipped only if that raises the Euler characteristic
  of the level-0 surface in its neighbourhood (a handle closes) and cuts or adds no region
  (no part cut off, no cavity closed, no pocket).

Only the sign matters for the test; a flipped vertex keeps its magnitude, so the surface moves by
less than ``delta`` and only at the accepted sites. Opt-in (``extract.handles=close``): where the
model itself nearly fills a true hole, or thins a strip between two holes to under q, the rule
finishes the job (a plate with 22 holes, docs/benchmarks/fidelity.md).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage
from skimage.measure import marching_cubes

REACH = 2  # lattice vertices each way of the line closings
_FLOOR = 1e-6  # a flipped value is at least this far from 0 (marching cubes needs a strict sign)
_CUBE = np.ones((3, 3, 3), dtype=bool)  # 26-connected clusters of candidates
_EDGE_NEIGHBOURS = ndimage.generate_binary_structure(3, 1)  # regions join along lattice edges


def _directions() -> list[tuple[int, int, int]]:
    """The 13 lattice directions up to sign: axes, face diagonals, body diagonals."""
    return [(a, b, c) for a, b, c in itertools.product((-1, 0, 1), repeat=3) if (a, b, c) > (0, 0, 0)]


def line_cover(inside: np.ndarray, points: np.ndarray, r: int = REACH) -> np.ndarray:
    """Which of ``points`` (flat indices of ``inside``, each outside) the union of the closings of
    ``inside`` by the 13 segments of ``2r + 1`` vertices covers: those in a run of outside vertices
    no longer than ``2r`` along some direction, with inside vertices at both ends.

    Evaluated at the points alone (a few per cent of the lattice) rather than as 26 full-volume
    morphology passes; the lattice border counts as outside, so nothing wraps.
    """
    pad = np.pad(inside, 2 * r)
    lattice = pad.ravel()
    ijk = np.stack(np.unravel_index(points, inside.shape), axis=-1) + 2 * r
    flat = np.ravel_multi_index(tuple(ijk.T), pad.shape)
    strides = np.array([pad.shape[1] * pad.shape[2], pad.shape[2], 1])
    out = np.zeros(len(points), dtype=bool)
    far = 2 * r + 1
    for d in _directions():
        step = int(np.dot(d, strides))
        ahead = np.full(len(points), far + 1)
        behind = np.full(len(points), far + 1)
        for k in range(2 * r, 0, -1):  # nearest hit last, so it wins
            ahead[lattice[flat + k * step]] = k
            behind[lattice[flat - k * step]] = k
        out |= ahead + behind <= far
    return out


def surface_euler(volume: np.ndarray) -> int:
    """V - E + F of the level-0 marching-cubes surface of a block (open at the block's border)."""
    if not volume.min() < 0 < volume.max():
        return 0
    verts, faces = marching_cubes(volume.astype(np.float32), 0.0)[:2]
    a = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]]).astype(np.int64)
    b = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]]).astype(np.int64)
    edges = np.minimum(a, b) * len(verts) + np.maximum(a, b)
    return len(verts) - len(np.unique(edges)) + len(faces)


def _cuts_or_pockets(
    field: np.ndarray, cluster: np.ndarray, win: tuple[slice, ...], count: list[int]
) -> bool:
    """Would setting ``cluster`` (a mask over ``field[win]``) inside add a region to ``field < 0``
    (it touches no inside vertex along a lattice edge: a pocket) or cut a region of ``field >= 0``
    in two (a cavity closed, a part cut off)? Regions join along lattice edges only, the strict
    count: a flip that joins or cuts only across a diagonal is refused.

    The cut test is local first: if the outside vertices next to the cluster stay connected
    within the block, they stay connected everywhere. Otherwise (a hole through a plate: its two
    sides meet only around the plate's edge) the whole lattice is labelled; ``count`` caches the
    number of outside regions between calls (empty: not known yet).
    """
    block = field[win]
    rim = ndimage.binary_dilation(cluster, _EDGE_NEIGHBOURS) & ~cluster
    if not (block[rim] < 0).any():
        return True
    after = np.where(cluster, -1.0, block)
    labels = ndimage.label(after >= 0)[0]
    if len(np.unique(labels[rim & (block >= 0)])) <= 1:
        return False
    if not count:
        count.append(ndimage.label(field >= 0)[1])
    whole = field.copy()
    whole[win] = after
    now = ndimage.label(whole >= 0)[1]
    if now > count[0]:
        return True
    count[0] = now
    return False


def close_side(field: np.ndarray, delta: float, orientation: float = 1.0) -> int:
    """Flip, in place, the clusters of ``field >= 0`` below ``delta`` whose move inside closes a
    handle without cutting or adding a region (see the module docstring); returns how many.

    ``orientation`` -1 says ``field`` is the negated shape field: the Euler characteristic is then
    taken of the shape's own orientation, since marching cubes resolves ambiguous faces by side.
    """
    inside = field < 0
    shallow = np.flatnonzero(~inside & (field < delta))
    candidates = np.zeros(field.shape, dtype=bool)
    candidates.flat[shallow[line_cover(inside, shallow)]] = True
    labels = ndimage.label(candidates, structure=_CUBE)[0]
    closed = 0
    outside_regions: list[int] = []  # the count of outside regions, once known
    for k, box in enumerate(ndimage.find_objects(labels), 1):
        # one vertex of margin holds every cell that touches the cluster; one more keeps the
        # border of the block (where the surface is cut open) identical before and after
        win = tuple(slice(max(b.start - 2, 0), b.stop + 2) for b in box)
        before = field[win]
        after = before.copy()
        mask = labels[win] == k
        after[mask] = -np.maximum(after[mask], _FLOOR)
        # the Euler characteristic rises when a handle closes, or when a region is added or cut
        if surface_euler(orientation * after) <= surface_euler(orientation * before):
            continue
        if _cuts_or_pockets(field, mask, win, outside_regions):
            continue
        field[win] = after
        closed += 1
    return closed


def close_shallow_handles(field: np.ndarray, quarter_cell: float) -> tuple[int, int]:
    """Close, in place, the perforations and bridges shallower than ``quarter_cell``; returns
    (perforations, bridges) closed. ``field`` is a full vertex lattice, negative inside."""
    field[np.abs(field) < _FLOOR] = _FLOOR  # a strict sign everywhere, as marching cubes sees it
    perforations = bridges = 0
    for delta in (quarter_cell / 4, quarter_cell / 2, quarter_cell):
        perforations += close_side(field, delta)
        np.negative(field, out=field)
        bridges += close_side(field, delta, orientation=-1.0)
        np.negative(field, out=field)
    return perforations, bridges


def quarter_cell(fine_cells: int) -> float:
    """A quarter of one cell of the training lattice (``fine_cells`` per side over [-1, 1])."""
    return 2.0 / fine_cells / 4
