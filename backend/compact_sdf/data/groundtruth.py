"""Exact signed distance from points to a triangle mesh (negative inside).

Chosen by measurement (docs/groundtruth.md, bench/groundtruth.py): libigl's AABB tree gives the
exact closest point in float64; the sign comes from the angle-weighted pseudonormal of the closest
feature (exact for closed, consistently oriented meshes) or, for open meshes, from the fast
generalised winding number (inside where it exceeds 1/2). Queries run in chunks so memory stays
bounded and progress can be reported; points in lattice (spatially coherent) order run several
times faster than random ones, so callers with scattered points pass ``coherent=False`` to have
them sorted first.
"""

from __future__ import annotations

from typing import Literal

import igl
import numpy as np

from compact_sdf.progress import Progress

SignMode = Literal["pseudonormal", "winding"]

SIGN_MODES = ("pseudonormal", "winding")
CHUNK = 1 << 20
FCPW_CHUNK = 1 << 18  # fcpw returns one Python object per point: keep the list short


def signed_distance(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    *,
    sign: SignMode = "pseudonormal",
    coherent: bool = True,
    progress: Progress | None = None,
    stage: str = "signed distance",
) -> np.ndarray:
    """Signed distance of each point, float32, negative inside.

    ``coherent=False`` sorts the points along a coarse lattice first (and restores the order),
    which keeps the tree walk cache-friendly for random points.
    """
    if sign not in SIGN_MODES:
        raise ValueError(f"unknown sign mode '{sign}'; use one of {SIGN_MODES}")
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    order = None if coherent else _coherent_order(p)
    if order is not None:
        p = p[order]
    out = np.empty(len(p), dtype=np.float32)
    if progress is not None:
        progress(stage, 0.0)
    for start in range(0, len(p), CHUNK):
        chunk = np.ascontiguousarray(p[start : start + CHUNK])
        out[start : start + len(chunk)] = _query(v, f, chunk, sign)
        if progress is not None:
            progress(stage, min(1.0, (start + len(chunk)) / max(len(p), 1)))
    if order is not None:
        restored = np.empty_like(out)
        restored[order] = out
        out = restored
    return out


def unsigned_distance(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    *,
    progress: Progress | None = None,
    stage: str = "distance",
) -> np.ndarray:
    """Exact unsigned distance (float32) through fcpw's BVH: 2-4x libigl's rate far from the surface.

    fcpw works in float32 (max error 1.1e-7 against the float64 brute force, docs/groundtruth.md),
    which is the precision the samples are stored in anyway.
    """
    import fcpw

    scene = fcpw.scene_3D()
    scene.set_object_count(1)
    scene.set_object_vertices(np.asfortranarray(vertices, dtype=np.float32), 0)
    scene.set_object_triangles(np.asfortranarray(faces, dtype=np.int32), 0)
    scene.build(fcpw.aggregate_type.bvh_surface_area, True)
    p = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    out = np.empty(len(p), dtype=np.float32)
    step = FCPW_CHUNK
    if progress is not None:
        progress(stage, 0.0)
    for start in range(0, len(p), step):
        chunk = np.asfortranarray(p[start : start + step])
        hits = fcpw.interaction_3D_list()
        scene.find_closest_points(chunk, np.full(len(chunk), np.inf, dtype=np.float32), hits)
        out[start : start + len(chunk)] = np.fromiter((h.d for h in hits), dtype=np.float32, count=len(chunk))
        if progress is not None:
            progress(stage, min(1.0, (start + len(chunk)) / len(p)))
    return out


def _query(v: np.ndarray, f: np.ndarray, points: np.ndarray, sign: SignMode) -> np.ndarray:
    if sign == "pseudonormal":
        return igl.signed_distance(points, v, f, igl.SIGNED_DISTANCE_TYPE_PSEUDONORMAL)[0]
    # libigl's FAST_WINDING_NUMBER sign type also perturbs the magnitude (docs/groundtruth.md), so the
    # exact unsigned distance and the winding number are taken separately.
    dist = igl.signed_distance(points, v, f, igl.SIGNED_DISTANCE_TYPE_UNSIGNED)[0]
    inside = igl.fast_winding_number(v, f, points) > 0.5
    return np.where(inside, -dist, dist)


def _coherent_order(points: np.ndarray, cells: int = 64) -> np.ndarray:
    """Permutation that visits the points cell by cell on a ``cells``^3 lattice over their bounds."""
    lo = points.min(axis=0)
    span = np.maximum(points.max(axis=0) - lo, 1e-12)
    idx = np.minimum(((points - lo) / span * cells).astype(np.int64), cells - 1)
    key = (idx[:, 0] * cells + idx[:, 1]) * cells + idx[:, 2]
    return np.argsort(key, kind="stable")


def point_triangle_distance(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Exact distance from each point to each triangle, brute force: (P,3) x (T,3,3) -> (P,T).

    The reference the fast path is checked against (tests, bench); Ericson's region test in
    float64, vectorised over all pairs, so only for small sets.
    """
    p = np.asarray(points, dtype=np.float64)[:, None, :]
    a, b, c = (np.asarray(tri, dtype=np.float64)[None, :, k, :] for k in range(3))
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = _dot(ab, ap), _dot(ac, ap)
    bp = p - b
    d3, d4 = _dot(ab, bp), _dot(ac, bp)
    cp = p - c
    d5, d6 = _dot(ab, cp), _dot(ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v_in, w_in = vb / denom, vc / denom
        t_ab = d1 / (d1 - d3)
        t_ac = d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    closest = a + v_in[..., None] * ab + w_in[..., None] * ac  # interior by default
    regions = [
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), b + t_bc[..., None] * (c - b)),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + t_ac[..., None] * ac),
        ((d6 >= 0) & (d5 <= d6), np.broadcast_to(c, closest.shape)),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + t_ab[..., None] * ab),
        ((d3 >= 0) & (d4 <= d3), np.broadcast_to(b, closest.shape)),
        ((d1 <= 0) & (d2 <= 0), np.broadcast_to(a, closest.shape)),
    ]
    for mask, point in regions:  # later regions take precedence, as in Ericson's early returns
        closest = np.where(mask[..., None], point, closest)
    return np.linalg.norm(p - closest, axis=-1)


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("...k,...k->...", x, y)
