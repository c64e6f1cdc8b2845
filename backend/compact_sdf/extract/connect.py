"""Join the parts of a decoded field that the field itself nearly joins (in-between shapes).

A shape decoded at a blended code is close to a blend of its ends' distance fields, and such a
blend pinches a fading feature (a bunny's ear, a scorpion's tail, a wing) at its narrowest neck
before the feature is gone, so the in-between comes out in pieces. Where the field says two parts
are almost one (a path between them along which the field stays below a small level ``l``), a
thin tube along that path makes them one body; parts the field keeps further apart than ``gap``
stay apart. Enclosed voids (a bubble of positive field inside the body, an invisible inner
surface) are filled.

Connectivity here is that of lattice vertices with 6 neighbours, the strictest one: two inside
vertices joined by a lattice edge are always inside one marching-cubes component, so a chain of
negative vertices along the path is enough for marching cubes to give one body.

Assumption: the field holds exact values wherever ``|f| <= gap`` (the sparse search keeps them
when asked for that width) and its sign everywhere else; vertices beyond ``gap`` are walls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

# Default gap (normalised units; the shape spans [-1, 1]) for in-betweens: the largest level at
# which parts of the 40 measured in-betweens met (0.13) fits under it, docs/benchmarks/interpolation.md.
JOIN_GAP = 0.15
# The tube's radius in voxels: below 1 voxel the tube would vanish between lattice vertices; the
# path's own vertices are 6-connected, so 0.75 keeps the chain negative while staying thin.
TUBE_RADIUS = 0.75
SIX = ndimage.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class Joined:
    field: np.ndarray  # float32 (N+1)^3: the field with tubes and filled voids
    touched: np.ndarray  # bool (N+1)^3: the vertices whose value changed
    levels: list[float]  # the level each joined part needed, normalised units
    apart: int  # parts left apart (no path below ``gap``)
    voids: int  # enclosed voids filled


def join_parts(field: np.ndarray, gap: float) -> Joined:
    """Join every part of ``{field < 0}`` to the largest one along the lowest path below ``gap``.

    ``field`` is a vertex lattice over [-1,1]^3 (``N + 1`` per side). Parts are tried in rising
    order of the level at which they meet the largest part; each joined part gets a tube of
    ``TUBE_RADIUS`` voxels along a 6-connected lattice path from it to the body, through vertices
    whose value is at most that level.
    """
    h = 2.0 / (field.shape[0] - 1)
    out = field.astype(np.float32, copy=True)
    touched = np.zeros(field.shape, dtype=bool)
    labels, count = ndimage.label(out < 0, structure=SIX)
    levels: list[float] = []
    if count > 1:
        _, first = np.unique(labels.ravel(), return_index=True)  # one vertex of each part (0: outside)
        largest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
        body = labels == largest
        waiting = set(range(1, count + 1)) - {largest}
        for level in np.arange(1, int(gap / (0.5 * h)) + 1) * (0.5 * h):  # 0.5 voxel steps up to gap
            if not waiting:
                break
            reach = ndimage.label(out <= level, structure=SIX)[0]
            flat = reach.ravel()
            meeting = sorted(p for p in waiting if flat[first[p]] == flat[first[largest]])
            if not meeting:
                continue
            allowed = reach == flat[first[largest]]
            for part in meeting:
                mask = labels == part
                _tube(out, touched, _lowest_path(out, allowed, mask, body, h), h)
                body |= mask
                waiting.discard(part)
                levels.append(float(level))
        apart = len(waiting)
    else:
        apart = 0
    voids = _fill_voids(out, touched, h)
    return Joined(out, touched, levels, apart, voids)


def join_stages(gap: float, h: float) -> list[float]:
    """The gaps a join widens its search through: 2 voxels (``h`` each), doubling, then ``gap``.

    Parts of in-betweens meet at 1-2 voxels (0.016-0.031 at N = 64 and 128 on the interactive
    benchmark's model), so the first stage is usually the last: an exact shell of 2 voxels instead
    of ``gap`` (about 5 voxels at N = 64, 10 at N = 128).
    """
    stages = []
    stage = 2.0 * h
    while stage < gap:
        stages.append(stage)
        stage *= 2.0
    return [*stages, gap]


def needs_join(field: np.ndarray) -> bool:
    """Whether ``join_parts`` could change ``field``: more than one part, or an enclosed void.

    Two labellings of the sign lattice (tens of ms at N = 128): most shapes are one body without
    voids, and then the exact values out to the join gap are never needed.
    """
    inside = field < 0
    return ndimage.label(inside, structure=SIX)[1] > 1 or ndimage.label(~inside, structure=SIX)[1] > 1


def _lowest_path(
    field: np.ndarray, allowed: np.ndarray, part: np.ndarray, body: np.ndarray, h: float
) -> np.ndarray:
    """(K, 3) lattice vertices of a 6-connected path from ``part`` to ``body`` inside ``allowed``,
    preferring low field values: a vertex costs 1 plus its value in voxels above 0, an edge the mean
    of its two vertices' costs (minimum-cost path, Dijkstra over the allowed vertices' graph)."""
    where = np.argwhere(allowed)
    lo, hi = where.min(axis=0), where.max(axis=0) + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    inside = allowed[box]
    index = np.full(inside.shape, -1, dtype=np.int64)
    index[inside] = np.arange(int(inside.sum()))
    cost = (1.0 + np.maximum(field[box], 0.0) / h)[inside]
    rows, cols = [], []
    for axis in range(3):
        a = np.moveaxis(index, axis, 0)
        left, right = a[:-1].ravel(), a[1:].ravel()
        both = (left >= 0) & (right >= 0)
        rows.append(left[both])
        cols.append(right[both])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((0.5 * (cost[r] + cost[c]), (r, c)), shape=(len(cost),) * 2).tocsr()
    starts = index[part[box] & inside]
    dist, previous, _ = dijkstra(
        graph, directed=False, indices=starts, min_only=True, return_predecessors=True
    )
    goals = index[body[box] & inside]
    node = int(goals[np.argmin(dist[goals])])
    path = [node]
    while previous[node] >= 0:
        node = int(previous[node])
        path.append(node)
    return where_of(index, np.asarray(path)) + lo


def where_of(index: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """(K, 3) positions in ``index`` of the graph nodes ``nodes`` (index holds node numbers, -1 elsewhere)."""
    positions = np.argwhere(index >= 0)
    return positions[np.argsort(index[index >= 0])][nodes]


def _tube(field: np.ndarray, touched: np.ndarray, path: np.ndarray, h: float) -> None:
    """Union (min) of the field with a tube of ``TUBE_RADIUS`` voxels around the path's vertices."""
    pad = 3
    lo = np.maximum(path.min(axis=0) - pad, 0)
    hi = np.minimum(path.max(axis=0) + pad + 1, field.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    mask = np.ones(tuple(hi - lo), dtype=bool)
    mask[tuple((path - lo).T)] = False
    tube = (ndimage.distance_transform_edt(mask) - TUBE_RADIUS).astype(np.float32) * np.float32(h)
    lower = tube < field[box]
    field[box] = np.where(lower, tube, field[box])
    touched[box] |= lower


def _fill_voids(field: np.ndarray, touched: np.ndarray, h: float) -> int:
    """Make enclosed pockets of non-negative field (not connected to the lattice's border) inside."""
    labels, count = ndimage.label(field >= 0, structure=SIX)
    if count <= 1:
        return 0
    border = np.unique(np.concatenate([
        labels[0].ravel(), labels[-1].ravel(), labels[:, 0].ravel(),
        labels[:, -1].ravel(), labels[:, :, 0].ravel(), labels[:, :, -1].ravel(),
    ]))  # fmt: skip
    void = (labels > 0) & ~np.isin(labels, border)
    field[void] = np.float32(-0.5 * h)
    touched |= void
    return int(count - len(border[border > 0]))
