"""Interpolation rows are laid out by the shapes' sizes: no two boxes of a row overlap, nor the row and its
sources, nor the live blend and either (issue 12, item 5).

The layout rule is checked on random boxes without Blender; the objects it makes are checked in real
headless Blender, with shapes of very different sizes whose raw (blended) positions do overlap.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest
from _service_helpers import addon_module
from blender_harness import REPO, run_in_blender

Box = tuple[tuple[float, float, float], tuple[float, float, float]]


def _overlap(a: Any, b: Any) -> bool:
    """Whether two boxes ([lo, hi]) share interior volume (touching faces do not count)."""
    return all(a[0][i] < b[1][i] and b[0][i] < a[1][i] for i in range(3))


def _overlapping_pairs(boxes: list[Any]) -> list[tuple[int, int]]:
    return [
        (i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if _overlap(boxes[i], boxes[j])
    ]


def _moved(box: Box, centre: tuple[float, float, float]) -> Box:
    half = [(box[1][i] - box[0][i]) / 2 for i in range(3)]
    return (
        (centre[0] - half[0], centre[1] - half[1], centre[2] - half[2]),
        (centre[0] + half[0], centre[1] + half[1], centre[2] + half[2]),
    )


def _random_box(rng: random.Random) -> Box:
    lo = tuple(rng.uniform(-2, 2) for _ in range(3))
    return lo, tuple(v + rng.uniform(0.01, 3) for v in lo)  # type: ignore[return-value]


def test_row_rule_never_overlaps_on_random_boxes() -> None:
    layout = addon_module("layout")
    rng = random.Random(12)
    for _ in range(300):
        boxes = [_random_box(rng) for _ in range(rng.randint(2, 9))]
        sources = layout.union([_random_box(rng) for _ in range(2)])
        clearance = rng.choice([0.0, 0.1, 3.0])
        row = [
            _moved(b, c) for b, c in zip(boxes, layout.row_centres(boxes, sources, clearance), strict=True)
        ]
        live_box = _random_box(rng)
        live = _moved(live_box, layout.behind_centre(live_box, sources, clearance))
        assert _overlapping_pairs([*row, sources, live]) == []


@pytest.mark.blender
def test_row_and_live_objects_in_blender_do_not_overlap(tmp_path: Path) -> None:
    out = run_in_blender(__file__, "scenario_row", tmp_path / "user")["result"]
    assert _overlapping_pairs(out["raw"]) != []  # the blended positions alone would overlap
    assert out["collection"] == "Interpolation" and out["count"] == 5
    boxes = out["row"] + out["sources"] + [out["live"]]
    assert _overlapping_pairs(boxes) == []
    xs = [b[0][0] for b in out["row"]]
    assert xs == sorted(xs)  # left to right in the order of the steps


# --- runs inside Blender -------------------------------------------------------------------------


def _cube(centre: tuple[float, float, float], size: float) -> Any:
    """Triangles of an axis-aligned cube (what a job's PLY would hold)."""
    from array import array

    sys.path.insert(0, str(REPO))
    from addon import mesh_bridge

    corners = [(x, y, z) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
    verts = array("f", [centre[i] + size / 2 * v[i] for v in corners for i in range(3)])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = array("i", [i for a, b, c, d in quads for i in (a, b, c, a, c, d)])
    return mesh_bridge.Triangles(verts, faces)


def scenario_row() -> dict[str, Any]:
    import bpy

    sys.path.insert(0, str(REPO))
    from addon import mesh_bridge, scene

    bpy.ops.wm.read_homefile(use_empty=True)
    for name, x in (("A", 0.0), ("B", 1.0)):  # two small sources close together
        bpy.ops.mesh.primitive_cube_add(size=0.5, location=(x, 0, 0))
        bpy.context.active_object.name = name
    sizes = [0.5, 3.0, 0.2, 2.0, 0.5]  # in-betweens far larger than the sources' spacing
    meshes = [_cube((t / 4, 0.0, 0.0), s) for t, s in enumerate(sizes)]
    objects = scene.add_row([f"row {i}" for i in range(5)], meshes, ["A", "B"], 0.3)
    live = scene.add_behind("Live", _cube((0.5, 0.0, 0.0), 2.5), ["A", "B"], 0.3)
    bpy.context.view_layer.update()
    return {
        "raw": [mesh_bridge.bounds(m) for m in meshes],
        "row": [scene.world_box(o) for o in objects],
        "sources": [scene.world_box(bpy.data.objects[n]) for n in ("A", "B")],
        "live": scene.world_box(live),
        "collection": objects[0].users_collection[0].name,
        "count": len(objects),
    }
