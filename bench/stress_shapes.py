"""Synthetic shapes that stress thin parts, narrow gaps and through-holes, with known topology.

The shared meshes hold one plate with holes and a few thin legs; a preset chosen on them alone
could be tuned to them. These seven solids (manifold3d booleans, so closed and oriented)
each isolate one difficulty at sizes below and above a `preview` lattice cell, and their genus is
known by construction:

- ``holed_plate``: a plate 0.02 thick with 24 round through-holes from 0.012 to 0.05 across (genus 24)
- ``bracket``: an L-bracket 0.04 thick with four bolt holes and a slot (genus 5)
- ``winged``: a fuselage with wings and a tail fin 0.015 thick (genus 0)
- ``spider``: a body with eight bent legs 0.024 thick (genus 0)
- ``grille``: a 4 x 4 grid of bars 0.03 across with 3 x 3 windows (genus 9)
- ``comb``: 12 teeth 0.025 wide with gaps of 0.012 to 0.03 between them (genus 0)
- ``lattice``: a 3 x 3 x 3 cubic frame of round struts 0.03 across, like a scanned lattice
  sculpture or an infill (64 joints, 144 struts: genus 81)
- ``housing``: an open CAD housing, walls 0.015 thick (1.5% of its length) with sharp edges, 24
  round through-holes 0.012 to 0.04 across in its floor and a slot in one side (genus 25)
- ``statue``: a figure with two thin wings 0.012 thick and a raised arm holding a torch; the
  legs and the base close one loop (genus 1)

Sizes are in units of the longest side (1.0); preparation scales that to about 1.8 normalised
units, so a 0.012 hole is about 0.022 across there (1.4 cells of a 128 lattice).

    .venv/bin/python bench/stress_shapes.py --out out/bench/stress   # writes <name>.ply
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import trimesh
from _harness import OUT
from compact_sdf.data.families import box, union
from manifold3d import Manifold

SEGMENTS = 32
GENUS = {
    "holed_plate": 24,
    "bracket": 5,
    "winged": 0,
    "spider": 0,
    "grille": 9,
    "comb": 0,
    "lattice": 81,
    "housing": 25,
    "statue": 1,
}


def _hole(radius: float, x: float, y: float, depth: float = 1.0) -> Manifold:
    """A vertical cylinder through everything around z = 0."""
    return Manifold.cylinder(depth, radius, radius, SEGMENTS, center=True).translate([x, y, 0.0])


def _minus(solid: Manifold, cuts: list[Manifold]) -> Manifold:
    return solid - union(cuts)


def holed_plate() -> Manifold:
    diameters = np.linspace(0.012, 0.05, 24)
    cuts = [_hole(d / 2, -0.42 + 0.168 * (i % 6), -0.21 + 0.14 * (i // 6)) for i, d in enumerate(diameters)]
    return _minus(box((1.0, 0.6, 0.02)), cuts)


def bracket() -> Manifold:
    base = box((1.0, 0.4, 0.04), (0.0, 0.0, 0.02))
    wall = box((1.0, 0.04, 0.4), (0.0, 0.18, 0.2))
    bolts = [_hole(0.025, x, y) for x in (-0.35, 0.35) for y in (-0.1, 0.05)]
    slot = box((0.3, 0.1, 0.15), (0.0, 0.18, 0.22))
    return _minus(union([base, wall]), [*bolts, slot])


def winged() -> Manifold:
    body = Manifold.cylinder(0.8, 0.05, 0.03, SEGMENTS, center=True).rotate([0.0, 90.0, 0.0])
    wing = box((0.18, 1.0, 0.015), (0.0, 0.0, 0.0))
    tail = box((0.12, 0.35, 0.015), (-0.36, 0.0, 0.0))
    fin = box((0.1, 0.015, 0.15), (-0.36, 0.0, 0.07))
    return union([body, wing, tail, fin])


def spider() -> Manifold:
    parts = [Manifold.sphere(0.12, SEGMENTS).scale([1.4, 1.0, 0.6])]
    for i in range(8):
        angle = np.radians(-60 + 40 * (i % 4)) + (np.pi if i >= 4 else 0.0)
        direction = np.array([np.cos(angle), np.sin(angle), 0.0])
        knee = direction * 0.32 + np.array([0.0, 0.0, 0.1])
        foot = direction * 0.48 + np.array([0.0, 0.0, -0.15])
        for a, b in ((np.zeros(3), knee), (knee, foot)):
            parts.append(_segment(a, b, 0.012))
    return union(parts)


def _segment(a: np.ndarray, b: np.ndarray, radius: float) -> Manifold:
    """A round bar from a to b with ball ends (so joints are smooth and overlap)."""
    d = b - a
    length = float(np.linalg.norm(d))
    bar = Manifold.cylinder(length, radius, radius, SEGMENTS)
    tilt = np.degrees(np.arccos(d[2] / length))
    turn = np.degrees(np.arctan2(d[1], d[0]))
    bar = bar.rotate([0.0, tilt, 0.0]).rotate([0.0, 0.0, turn]).translate(list(a))
    balls = [Manifold.sphere(radius, SEGMENTS).translate(list(p)) for p in (a, b)]
    return union([bar, *balls])


def grille() -> Manifold:
    bars = [box((1.0, 0.03, 0.03), (0.0, -0.45 + 0.3 * i, 0.0)) for i in range(4)]
    bars += [box((0.03, 1.0, 0.036), (-0.45 + 0.3 * i, 0.0, 0.0)) for i in range(4)]  # no shared edges
    return union(bars)


def comb() -> Manifold:
    parts = [box((1.0, 0.12, 0.03), (0.0, 0.3, 0.0))]
    gaps = np.linspace(0.012, 0.03, 11)
    x = -0.45
    for i in range(12):
        parts.append(box((0.025, 0.5, 0.03), (x, 0.0, 0.0)))
        x += 0.025 + (gaps[i] if i < 11 else 0.0)
    return union(parts)


def lattice() -> Manifold:
    ticks = np.linspace(-0.5, 0.5, 4)
    struts = [
        _segment(
            np.roll([ticks[k], ticks[i], ticks[j]], axis),
            np.roll([ticks[k + 1], ticks[i], ticks[j]], axis),
            0.015,
        )
        for i, j, k, axis in itertools.product(range(4), range(4), range(3), range(3))
    ]
    return union(struts)


def housing() -> Manifold:
    """The shape that s_g misses at the CPU presets: thin walls, many small holes, sharp edges."""
    wall = 0.015
    outer = box((1.0, 0.6, 0.3), (0.0, 0.0, 0.15))
    inner = box((1.0 - 2 * wall, 0.6 - 2 * wall, 0.3), (0.0, 0.0, 0.15 + wall))
    diameters = np.linspace(0.012, 0.04, 24)
    holes = [_hole(d / 2, -0.4 + 0.16 * (i % 6), -0.2 + 0.133 * (i // 6)) for i, d in enumerate(diameters)]
    slot = box((0.3, 0.2, 0.05), (0.0, 0.3, 0.18))  # through the +y wall
    return _minus(outer - inner, [*holes, slot])


def statue() -> Manifold:
    """A standing figure with thin wings and a raised arm holding a torch (thin parts far from the body)."""
    body = Manifold.sphere(0.09, SEGMENTS).scale([1.0, 0.7, 2.2]).translate([0.0, 0.0, 0.0])
    head = Manifold.sphere(0.055, SEGMENTS).translate([0.0, 0.0, 0.235])
    legs = [_segment(np.array([x, 0.0, -0.12]), np.array([x, 0.0, -0.45]), 0.03) for x in (-0.045, 0.045)]
    base = box((0.3, 0.2, 0.05), (0.0, 0.0, -0.47))
    arm = _segment(np.array([0.07, 0.0, 0.15]), np.array([0.16, 0.0, 0.42]), 0.018)
    torch_ = _segment(np.array([0.16, 0.0, 0.38]), np.array([0.17, 0.0, 0.5]), 0.012)
    flame = Manifold.cylinder(0.06, 0.03, 0.0, SEGMENTS).translate([0.17, 0.0, 0.5])
    wings = [
        box((0.012, 0.42, 0.3)).rotate([angle, 0.0, 0.0]).translate([-0.06, side * 0.2, 0.14])
        for side, angle in ((1, -25.0), (-1, 25.0))
    ]
    return union([body, head, *legs, base, arm, torch_, flame, *wings])


SHAPES = {
    f.__name__: f for f in (holed_plate, bracket, winged, spider, grille, comb, lattice, housing, statue)
}


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in SHAPES.items():
        mesh = make().to_mesh()
        tri = trimesh.Trimesh(
            np.asarray(mesh.vert_properties)[:, :3], np.asarray(mesh.tri_verts), process=False
        )
        genus = 1 - tri.euler_number // 2
        if not tri.is_watertight or genus != GENUS[name] or len(tri.split(only_watertight=False)) != 1:
            raise SystemExit(
                f"{name}: watertight {tri.is_watertight}, genus {genus} (expected {GENUS[name]})"
            )
        paths.append(out / f"{name}.ply")
        tri.export(paths[-1])
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=OUT / "stress")
    for path in write(p.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
