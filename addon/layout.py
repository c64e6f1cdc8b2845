"""Where result objects go, from bounding boxes alone (no bpy: plain tuples, testable anywhere).

An interpolation row is laid out by the shapes' own sizes: left to right along X from the sources' left
edge, one gap between neighbours, in front of the sources (-Y) with a clearance; the live blend goes
behind them (+Y). So no two boxes overlap whatever the sizes or the sources' positions.
"""

from __future__ import annotations

Vec = tuple[float, float, float]
Box = tuple[Vec, Vec]  # (lowest corner, highest corner) in world space

GAP_RATIO = 0.25  # gap between row neighbours, as a share of the row's largest extent
MIN_GAP = 1e-3


def union(boxes: list[Box]) -> Box:
    """The box around all ``boxes`` (at least one)."""
    lo = tuple(min(b[0][i] for b in boxes) for i in range(3))
    hi = tuple(max(b[1][i] for b in boxes) for i in range(3))
    return lo, hi  # type: ignore[return-value]


def centre(box: Box) -> Vec:
    lo, hi = box
    return (lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2


def row_gap(boxes: list[Box]) -> float:
    largest = max(max(hi[i] - lo[i] for i in range(3)) for lo, hi in boxes)
    return max(GAP_RATIO * largest, MIN_GAP)


def row_centres(boxes: list[Box], sources: Box, clearance: float) -> list[Vec]:
    """The centre each row box moves to: side by side along X in the given order, starting at the sources'
    left edge, one ``row_gap`` apart; their back faces ``clearance`` (at least the gap) in front of the
    sources; each keeps its own height."""
    gap = row_gap(boxes)
    front = sources[0][1] - max(clearance, gap)
    x = sources[0][0]
    out: list[Vec] = []
    for lo, hi in boxes:
        width, depth = hi[0] - lo[0], hi[1] - lo[1]
        out.append((x + width / 2, front - depth / 2, (lo[2] + hi[2]) / 2))
        x += width + gap
    return out


def behind_centre(box: Box, sources: Box, clearance: float) -> Vec:
    """The centre for one box (the live blend) behind the sources: clear of them and of any row in front."""
    cx, _, cz = centre(box)
    depth = box[1][1] - box[0][1]
    return cx, sources[1][1] + max(clearance, row_gap([box, sources])) + depth / 2, cz
