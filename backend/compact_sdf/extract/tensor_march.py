"""Marching cubes on tensors, on the device the field lives on: one welded mesh, no Python loop
over cells or blocks.

Why not scikit-image here: it runs on the CPU, so on a GPU the lattice would be copied over and
meshed block by block, then the blocks' shared vertices merged by a KD-tree (seconds at N = 512,
while the network needs a fraction of one). Here a cell's triangles come from a table indexed by
its corner signs, a vertex is keyed by the lattice edge it lies on (so neighbouring cells share it
without a merge), and everything is a handful of gathers and one ``unique``.

The table is built from one rule, not typed in: on each cube face the crossed edges are joined in
pairs; on an ambiguous face (inside corners on a diagonal) the asymptotic decider (the sign of the
bilinear interpolant's saddle, as Lewiner's face test) says whether the inside corners connect
across the face. Segments are directed so the inside lies on their left seen from outside the
cube, chained into loops and fanned into triangles. Both cells that share a face draw the same
segments on it, so the surface is closed and every edge has two triangles, oriented outward for a
field negative inside (as ``lattice.march``). Its vertices are scikit-image's (linear
interpolation on the same edges after the same ``ZERO_GAP`` push); what differs is the diagonal a
quad is split along and the cells where Lewiner's interior test makes a tunnel (tests).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from compact_sdf.extract.lattice import CORNERS, ZERO_GAP

# The 12 cube edges as (low corner, high corner) indices into CORNERS (index = 4i + 2j + k).
EDGES = np.array([(a, a | bit) for bit in (4, 2, 1) for a in range(8) if not a & bit], dtype=np.int64)
EDGE_AXIS = np.array([0] * 4 + [1] * 4 + [2] * 4, dtype=np.int64)
MIDPOINTS = (CORNERS[EDGES[:, 0]] + CORNERS[EDGES[:, 1]]) / 2.0


def _faces() -> list[tuple[list[int], np.ndarray]]:
    """The 6 cube faces: their corners in cyclic order and their outward normal."""
    out = []
    for axis in range(3):
        u, v = [a for a in range(3) if a != axis]
        for side in (0, 1):
            cycle = []
            for du, dv in ((0, 0), (1, 0), (1, 1), (0, 1)):
                offset = [0, 0, 0]
                offset[axis], offset[u], offset[v] = side, du, dv
                cycle.append(4 * offset[0] + 2 * offset[1] + offset[2])
            normal = np.zeros(3)
            normal[axis] = 1.0 if side else -1.0
            out.append((cycle, normal))
    return out


FACES = _faces()


def _edge_of(a: int, b: int) -> int:
    lo, hi = min(a, b), max(a, b)
    return int(np.flatnonzero((EDGES[:, 0] == lo) & (EDGES[:, 1] == hi))[0])


def _pieces(cycle: list[int], inside: list[bool], connect: bool) -> list[tuple[int, int, int]]:
    """One face's segments as (edge, edge, an inside corner on the segment's inside)."""
    cut = [m for m in range(4) if inside[cycle[m]]]
    if len(cut) in (0, 4):
        return []
    if len(cut) == 2 and abs(cut[0] - cut[1]) == 2:  # ambiguous: cut off each corner of one kind
        alone = [m for m in range(4) if inside[cycle[m]] != connect]
        return [
            (
                _edge_of(cycle[m - 1], cycle[m]),
                _edge_of(cycle[m], cycle[(m + 1) % 4]),
                cycle[(m + 1) % 4] if connect else cycle[m],
            )
            for m in alone
        ]
    crossed = [m for m in range(4) if inside[cycle[m]] != inside[cycle[(m + 1) % 4]]]
    p, q = (_edge_of(cycle[m], cycle[(m + 1) % 4]) for m in crossed)
    return [(p, q, cycle[cut[0]])]


@functools.cache
def triangles(config: int, connected: int) -> tuple[tuple[int, int, int], ...]:
    """Triangles (as edge indices) of the configuration whose bit c says corner c is inside; bit f
    of ``connected`` says face f's inside corners connect (read on ambiguous faces only)."""
    inside = [bool(config >> c & 1) for c in range(8)]
    following = {}
    for f, (cycle, normal) in enumerate(FACES):
        for p, q, corner in _pieces(cycle, inside, bool(connected >> f & 1)):
            left = np.cross(normal, MIDPOINTS[q] - MIDPOINTS[p])
            start, end = (p, q) if left @ (CORNERS[corner] - MIDPOINTS[p]) > 0 else (q, p)
            following[start] = end
    out: list[tuple[int, int, int]] = []
    while following:
        start, edge = following.popitem()
        loop = [start]
        while edge != start:
            loop.append(edge)
            edge = following.pop(edge)
        out += [(loop[0], loop[i + 1], loop[i]) for i in range(1, len(loop) - 1)]
    return tuple(out)


def _face_connections(values: torch.Tensor) -> torch.Tensor:
    """(K,) with bit f set where face f of the cell is ambiguous and its inside corners connect:
    the bilinear interpolant's saddle ``(a0 a2 - a1 a3) / (a0 + a2 - a1 - a3)`` is inside (< 0).
    The formula reads the same from both cells that share the face, so they agree."""
    out = torch.zeros(len(values), dtype=torch.long, device=values.device)
    for f, (cycle, _) in enumerate(FACES):
        a = values[:, cycle]
        neg = a < 0
        ambiguous = (neg[:, 0] == neg[:, 2]) & (neg[:, 1] == neg[:, 3]) & (neg[:, 0] != neg[:, 1])
        saddle = (a[:, 0] * a[:, 2] - a[:, 1] * a[:, 3]) / (a[:, 0] + a[:, 2] - a[:, 1] - a[:, 3])
        out |= (ambiguous & (saddle < 0)).long() << f
    return out


def _table(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(U, T, 3) triangles (-1 past each row's count) and (U,) counts for configuration keys
    ``config * 64 + connected``: built on the CPU for the few hundred keys a mesh meets."""
    rows = [triangles(int(k) >> 6, int(k) & 63) for k in keys.cpu()]
    table = np.full((len(rows), max(1, *map(len, rows)), 3), -1, dtype=np.int64)
    for r, tris in enumerate(rows):
        if tris:
            table[r, : len(tris)] = tris
    counts = np.array([len(t) for t in rows], dtype=np.int64)
    return torch.from_numpy(table).to(keys.device), torch.from_numpy(counts).to(keys.device)


def march_cells(cells: torch.Tensor, values: torch.Tensor, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Mesh of the level 0 through the given cells of the output lattice.

    ``cells``: (K, 3) integer lattice coordinates of each cell's lowest corner; ``values``: (K, 8)
    the field at its corners in ``CORNERS`` order (exact, no NaN). Vertices in lattice units
    (float64) and faces (int64), on the CPU. Cells that share a face share its vertices.
    """
    device = values.device
    if len(values) == 0:
        return np.empty((0, 3), np.float64), np.empty((0, 3), np.int64)
    gap = ZERO_GAP * 2.0 / resolution
    values = values.float()
    values = torch.where(values.abs() < gap, torch.where(values < 0, -gap, gap), values)
    bits = torch.tensor([1 << c for c in range(8)], device=device)
    config = ((values < 0).long() * bits).sum(dim=1) * 64 + _face_connections(values)
    keys, row = torch.unique(config, return_inverse=True)
    table, counts = _table(keys)
    slot = torch.arange(table.shape[1], device=device)
    cell, tri = torch.nonzero(slot[None, :] < counts[row][:, None], as_tuple=True)
    if len(cell) == 0:
        return np.empty((0, 3), np.float64), np.empty((0, 3), np.int64)
    local = table[row[cell], tri].reshape(-1)  # (T*3,) cube edges
    owner = cell.repeat_interleave(3)
    edges = torch.from_numpy(EDGES).to(device)
    corners = torch.from_numpy(CORNERS).to(device)
    low = cells[owner].long() + corners[edges[local, 0]]
    side = resolution + 1
    axis = torch.from_numpy(EDGE_AXIS).to(device)[local]
    unique, inverse = torch.unique(
        ((low[:, 0] * side + low[:, 1]) * side + low[:, 2]) * 3 + axis, return_inverse=True
    )
    first = torch.full((len(unique),), len(owner), dtype=torch.long, device=device)
    first.scatter_reduce_(0, inverse, torch.arange(len(owner), device=device), reduce="amin")
    e, c = local[first], owner[first]
    va, vb = values[c, edges[e, 0]].double(), values[c, edges[e, 1]].double()
    step = (corners[edges[e, 1]] - corners[edges[e, 0]]).double()
    verts = low[first].double() + (va / (va - vb))[:, None] * step
    return verts.cpu().numpy(), inverse.reshape(-1, 3).cpu().numpy()
