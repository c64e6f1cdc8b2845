"""Scene helpers the operators share: which objects are encoded, backend-safe shape names, the result
collections, downloading a job's meshes and turning them into placed objects.
"""

from __future__ import annotations

import re
from typing import Any

import bpy
from mathutils import Vector

from . import connection, layout, mesh_bridge
from .constants import COLLECTION, LINK_CODE, LINK_MODEL, LINK_ROLE, ROW_COLLECTION

_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def shape_name(obj_name: str, taken: set[str]) -> str:
    """A backend-safe, unique shape name for an object (letters, digits, _ - . ; at most 64 chars)."""
    base = _NAME_BAD.sub("_", obj_name).strip("_.-")[:56] or "shape"
    if not base[0].isalnum():
        base = "s" + base
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def encoded_objects(context: bpy.types.Context) -> list[bpy.types.Object]:
    return [o for o in context.selected_objects if o.get(LINK_MODEL) and o.get(LINK_CODE)]


def target_collection(context: bpy.types.Context, sub: str | None = None) -> bpy.types.Collection:
    """The "Compact SDF" collection (and optionally a child), created on first use."""
    scene = context.scene
    coll = bpy.data.collections.get(COLLECTION)
    if coll is None:
        coll = bpy.data.collections.new(COLLECTION)
    if coll.name not in scene.collection.children:
        scene.collection.children.link(coll)
    if sub is None:
        return coll
    child = coll.children.get(sub) or bpy.data.collections.get(sub)
    if child is None:
        child = bpy.data.collections.new(sub)
    if child.name not in coll.children:
        coll.children.link(child)
    return child


def download_meshes(job: dict[str, Any]) -> list[mesh_bridge.Triangles]:
    """Fetch and parse every mesh file a finished job produced (before any Blender data is made)."""
    cl = connection.client()
    files = (job.get("result") or {}).get("files") or []
    if not files:
        raise RuntimeError("the job finished without a mesh")
    return [mesh_bridge.from_ply(cl.download_result(job["id"], name)) for name in files]


def add_object(
    name: str, tris: mesh_bridge.Triangles, origin: Vector, collection: bpy.types.Collection
) -> bpy.types.Object:
    """A new object whose origin sits at ``origin`` (world-space geometry stays where it came from)."""
    mesh = mesh_bridge.new_mesh(name, tris, origin)
    obj = bpy.data.objects.new(name, mesh)
    obj.location = origin
    collection.objects.link(obj)
    return obj


def link(obj: bpy.types.Object, model_id: str, role: str, code: str = "") -> None:
    """Write the backend links onto an object (plain custom properties, see ``constants.LINK_*``)."""
    obj[LINK_MODEL] = model_id
    if code:
        obj[LINK_CODE] = code
    obj[LINK_ROLE] = role


def world_box(obj: bpy.types.Object) -> layout.Box:
    """The object's bounding box in world space (the 8 corners of ``bound_box`` transformed)."""
    corners = [obj.matrix_world @ Vector(c) for c in obj.bound_box]
    lo = tuple(min(c[i] for c in corners) for i in range(3))
    hi = tuple(max(c[i] for c in corners) for i in range(3))
    return lo, hi  # type: ignore[return-value]


def sources_box(names: list[str], fallback: list[layout.Box]) -> layout.Box:
    """The box around the named objects that still exist, else around ``fallback``."""
    boxes = [world_box(o) for o in (bpy.data.objects.get(n) for n in names) if o is not None]
    return layout.union(boxes or fallback)


def add_row(
    names: list[str], meshes: list[mesh_bridge.Triangles], sources: list[str], clearance: float
) -> list[bpy.types.Object]:
    """Objects for a row of shapes, laid out by their own sizes in front of ``sources`` (no overlaps)."""
    boxes = [mesh_bridge.bounds(tris) for tris in meshes]
    targets = layout.row_centres(boxes, sources_box(sources, boxes), clearance)
    coll = target_collection(bpy.context, ROW_COLLECTION)
    objects = []
    for name, tris, box, target in zip(names, meshes, boxes, targets, strict=True):
        obj = add_object(name, tris, Vector(layout.centre(box)), coll)
        obj.location = Vector(target)
        objects.append(obj)
    return objects


def add_behind(
    name: str, tris: mesh_bridge.Triangles, sources: list[str], clearance: float
) -> bpy.types.Object:
    """An object (the live blend) behind ``sources``: clear of them and of a row in front of them. Its
    origin is its centre, so later geometry swaps morph it in place."""
    box = mesh_bridge.bounds(tris)
    obj = add_object(name, tris, Vector(layout.centre(box)), target_collection(bpy.context))
    obj.location = Vector(layout.behind_centre(box, sources_box(sources, [box]), clearance))
    return obj
