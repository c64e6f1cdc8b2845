"""Procedural shape families for collections: furniture and vessels built from primitives.

Each family maps a ``numpy`` generator to a parameter dict (``*_params``) and parameters to a
solid (``*_solid``), so a family's members differ by a few continuous settings (heights, radii,
thicknesses, tilts) and interpolation inside a family has a meaning. Parts are joined with
manifold3d's exact booleans, which always return a closed, oriented 2-manifold; parts overlap by
construction so every shape is one body. Units: roughly 1 tall, Z up (preparation normalises).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from manifold3d import CrossSection, Manifold, OpType

SEGMENTS = 40  # circle resolution of every round part (fixed: it is part of the shape's identity)

Params = dict[str, Any]


def box(size: tuple[float, float, float], at: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Manifold:
    """Axis-aligned box of ``size`` centred at ``at``."""
    return Manifold.cube(list(size), center=True).translate(list(at))


def _rod(radius: float, z0: float, z1: float, x: float = 0.0, y: float = 0.0, top: float = -1.0) -> Manifold:
    """Vertical cylinder (or cone frustum when ``top`` >= 0) from ``z0`` to ``z1`` at (x, y)."""
    return Manifold.cylinder(z1 - z0, radius, top, SEGMENTS).translate([x, y, z0])


def union(parts: list[Manifold]) -> Manifold:
    """One solid from many (overlaps merged)."""
    return Manifold.batch_boolean(parts, OpType.Add)


def _revolve(profile: list[tuple[float, float]]) -> Manifold:
    """Solid of revolution about Z of a closed (r, z) polygon with r >= 0."""
    return CrossSection([profile]).revolve(SEGMENTS)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return round(float(rng.uniform(lo, hi)), 4)


def chair_params(rng: np.random.Generator) -> Params:
    return {
        "seat_w": _u(rng, 0.42, 0.6),
        "seat_d": _u(rng, 0.4, 0.55),
        "seat_h": _u(rng, 0.4, 0.52),
        "seat_t": _u(rng, 0.04, 0.07),
        "leg": _u(rng, 0.035, 0.06),
        "round_legs": bool(rng.integers(0, 2)),
        "back_h": _u(rng, 0.3, 0.55),
        "back_t": _u(rng, 0.035, 0.06),
        "back_tilt": _u(rng, 0.0, 12.0),
    }


def chair_solid(p: Params) -> Manifold:
    w, d, h, t, leg = p["seat_w"], p["seat_d"], p["seat_h"], p["seat_t"], p["leg"]
    parts = [box((w, d, t), (0, 0, h - t / 2))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * (w / 2 - leg), sy * (d / 2 - leg)
            if p["round_legs"]:
                parts.append(_rod(leg * 0.6, 0.0, h - t / 2, x, y))
            else:
                parts.append(box((leg, leg, h - t / 2), (x, y, (h - t / 2) / 2)))
    back = box((w, p["back_t"], p["back_h"] + t), (0, 0, (p["back_h"] + t) / 2))
    back = back.rotate([-p["back_tilt"], 0, 0]).translate([0, -d / 2 + p["back_t"] / 2, h - t])
    parts.append(back)
    return union(parts)


def table_params(rng: np.random.Generator) -> Params:
    return {
        "round_top": bool(rng.integers(0, 2)),
        "top_w": _u(rng, 0.8, 1.3),
        "top_d": _u(rng, 0.55, 0.85),
        "top_t": _u(rng, 0.04, 0.08),
        "height": _u(rng, 0.65, 0.8),
        "leg": _u(rng, 0.04, 0.08),
        "apron": _u(rng, 0.0, 0.1),
    }


def table_solid(p: Params) -> Manifold:
    h, t, leg = p["height"], p["top_t"], p["leg"]
    if p["round_top"]:  # a pedestal table: round top, column, round foot
        r = p["top_w"] / 2
        return union(
            [
                _rod(r, h - t, h),
                _rod(leg * 1.5, 0.03, h - t / 2),
                _rod(r * 0.45, 0.0, 0.05, top=r * 0.3),
            ]
        )
    w, d = p["top_w"], p["top_d"]
    parts = [box((w, d, t), (0, 0, h - t / 2))]
    inset = leg / 2 + 0.03
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(
                box((leg, leg, h - t / 2), (sx * (w / 2 - inset), sy * (d / 2 - inset), (h - t / 2) / 2))
            )
    if p["apron"] > 0.02:  # a frame under the top, joining the legs
        a = p["apron"]
        for sy in (-1, 1):
            parts.append(box((w - 2 * inset, leg / 2, a), (0, sy * (d / 2 - inset), h - t - a / 2 + 0.005)))
        for sx in (-1, 1):
            parts.append(box((leg / 2, d - 2 * inset, a), (sx * (w / 2 - inset), 0, h - t - a / 2 + 0.005)))
    return union(parts)


def vase_params(rng: np.random.Generator) -> Params:
    return {
        "height": _u(rng, 0.8, 1.2),
        "r_foot": _u(rng, 0.12, 0.22),
        "r_belly": _u(rng, 0.22, 0.38),
        "belly_at": _u(rng, 0.25, 0.55),
        "r_neck": _u(rng, 0.07, 0.15),
        "r_lip": _u(rng, 0.1, 0.22),
        "opening": _u(rng, 0.04, 0.07),
    }


def vase_solid(p: Params) -> Manifold:
    """A revolved profile (foot, belly, neck, lip) with a shallow opening at the top."""
    h = p["height"]
    knots_z = np.array([0.0, p["belly_at"] * h, 0.8 * h, h])
    knots_r = np.array([p["r_foot"], p["r_belly"], p["r_neck"], p["r_lip"]])
    z = np.linspace(0.0, h, 24)
    r = np.interp(z, knots_z, knots_r)
    smooth = np.convolve(np.pad(r, 2, mode="edge"), np.ones(5) / 5, mode="valid")
    depth = min(0.25 * h, 0.2)
    hole = min(p["opening"], float(smooth[-1]) - 0.03)
    outline = [(0.0, 0.0)] + [(float(rr), float(zz)) for rr, zz in zip(smooth, z, strict=True)]
    outline += [(hole, h), (hole, h - depth), (0.0, h - depth)]
    return _revolve(outline)


def mug_params(rng: np.random.Generator) -> Params:
    return {
        "radius": _u(rng, 0.3, 0.42),
        "height": _u(rng, 0.7, 1.0),
        "wall": _u(rng, 0.05, 0.08),
        "taper": _u(rng, 0.8, 1.1),
        "handle_r": _u(rng, 0.18, 0.28),
        "handle_t": _u(rng, 0.04, 0.065),
    }


def mug_solid(p: Params) -> Manifold:
    """A (tapered) cup with a thick floor and a ring handle; the cavity cuts the ring's inner half."""
    r, h, wall = p["radius"], p["height"], p["wall"]
    top = r * p["taper"]
    body = _rod(r, 0.0, h, top=top)
    cavity = _rod(r - wall, 1.5 * wall, h + 0.05, top=top - wall)
    ring = CrossSection.circle(p["handle_t"], SEGMENTS).translate([p["handle_r"], 0.0]).revolve(SEGMENTS)
    handle = ring.rotate([90, 0, 0]).translate([(r + top) / 2, 0.0, h / 2])  # inner half lies in the cup
    return union([body, handle]) - cavity


def lamp_params(rng: np.random.Generator) -> Params:
    return {
        "base_r": _u(rng, 0.18, 0.3),
        "base_h": _u(rng, 0.04, 0.08),
        "stem_r": _u(rng, 0.02, 0.04),
        "stem_h": _u(rng, 0.5, 0.9),
        "shade_low": _u(rng, 0.2, 0.35),
        "shade_high": _u(rng, 0.08, 0.2),
        "shade_h": _u(rng, 0.2, 0.35),
        "arm_tilt": _u(rng, 0.0, 25.0),
    }


def lamp_solid(p: Params) -> Manifold:
    """Round foot, a (tilted) stem and a solid conical shade."""
    stem = _rod(p["stem_r"], 0.0, p["stem_h"])
    shade = _rod(p["shade_low"], 0.0, p["shade_h"], top=p["shade_high"]).translate([0, 0, p["stem_h"] - 0.05])
    head = union(
        [stem, shade, Manifold.sphere(p["stem_r"] * 2.0, SEGMENTS).translate([0, 0, p["stem_h"] - 0.05])]
    )
    head = head.rotate([0, p["arm_tilt"], 0]).translate([0, 0, p["base_h"] * 0.5])
    base = _rod(p["base_r"], 0.0, p["base_h"], top=p["base_r"] * 0.85)
    return union([base, head])


def shelf_params(rng: np.random.Generator) -> Params:
    return {
        "width": _u(rng, 0.6, 1.0),
        "depth": _u(rng, 0.25, 0.4),
        "height": _u(rng, 0.8, 1.6),
        "board": _u(rng, 0.03, 0.05),
        "shelves": int(rng.integers(2, 5)),
        "back": bool(rng.integers(0, 2)),
    }


def shelf_solid(p: Params) -> Manifold:
    """Two sides, a top, a bottom and evenly spaced shelves, with or without a back panel."""
    w, d, h, b = p["width"], p["depth"], p["height"], p["board"]
    parts = [box((b, d, h), (sx * (w - b) / 2, 0, h / 2)) for sx in (-1, 1)]
    for k in range(p["shelves"] + 2):
        z = b / 2 + k * (h - b) / (p["shelves"] + 1)
        parts.append(box((w - b, d, b), (0, 0, z)))
    if p["back"]:
        parts.append(box((w - b, b / 2, h - b), (0, d / 2 - b / 4, h / 2)))
    return union(parts)


FAMILIES: dict[str, tuple[Callable[[np.random.Generator], Params], Callable[[Params], Manifold]]] = {
    "chair": (chair_params, chair_solid),
    "table": (table_params, table_solid),
    "vase": (vase_params, vase_solid),
    "mug": (mug_params, mug_solid),
    "lamp": (lamp_params, lamp_solid),
    "shelf": (shelf_params, shelf_solid),
}
