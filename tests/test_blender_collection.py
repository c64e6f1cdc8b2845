"""A collection in Blender (issue 13): 20 selected objects encoded into one model (tiny preset) with a
non-mesh skipped, the model's shape list (name, source object, fidelity once evaluated), reconstructing
and interpolating shapes chosen from that list, and "Add Selected to Model".

Real headless Blender and a real backend on loopback; background mode, so every operator waits for its
job and nothing depends on how fast the machine is.
"""

from __future__ import annotations

from typing import Any

import pytest
from blender_harness import install_with_local_backend, local_story

pytestmark = [pytest.mark.blender, pytest.mark.slow]

COUNT = 20


story = local_story("scenario_collection")


def test_twenty_objects_encode_into_one_model_and_the_non_mesh_is_skipped(story: dict[str, Any]) -> None:
    enc = story["encode"]
    assert enc["result"] == ["FINISHED"] and len(enc["links"]) == COUNT
    assert len({model for model, _ in enc["links"].values()}) == 1
    assert "Skipped 'Marker' is not a mesh" in story["output"]
    assert "Marker" not in enc["links"]


def test_the_shape_list_names_each_code_and_its_object(story: dict[str, Any]) -> None:
    shapes = story["encode"]["shapes"]
    assert len(shapes) == COUNT
    assert all(source == name for name, source, _ in shapes)  # shape names come from the object names
    assert all(fidelity == "" for _, _, fidelity in shapes)  # not evaluated yet


def test_a_shape_chosen_from_the_list_is_reconstructed(story: dict[str, Any]) -> None:
    rec = story["reconstruct"]
    assert rec["result"] == ["FINISHED"]
    assert rec["new"] == [f"{rec['chosen']} SDF"] and rec["code"] == rec["chosen"] and rec["faces"] > 20


def test_ticked_shapes_interpolate_into_a_row(story: dict[str, Any]) -> None:
    row = story["interpolate"]
    assert row["disabled_message"].endswith("Tick 2 or more shapes in the model's shape list")
    assert row["result"] == ["FINISHED"] and row["count"] == 3


def test_add_selected_to_model_links_new_objects_and_lists_them(story: dict[str, Any]) -> None:
    add = story["add"]
    assert add["result"] == ["FINISHED"]
    assert add["links"] == {"Extra1": [story["model"], "Extra1"], "Extra2": [story["model"], "Extra2"]}
    assert add["shape_count"] == COUNT + 2 and {"Extra1", "Extra2"} <= set(add["listed"])
    assert add["old_links_unchanged"]


def test_evaluate_shows_fidelity_in_the_list_and_keeps_it_on_the_object(story: dict[str, Any]) -> None:
    ev = story["evaluate"]
    assert ev["result"] == ["FINISHED"]
    assert ev["listed"].startswith("CD ") and "F@0.01 " in ev["listed"]
    assert ev["on_object"] == ev["listed"]


# --- runs inside Blender -------------------------------------------------------------------------


def scenario_collection(zip_path: str, data_dir: str) -> dict[str, Any]:
    import bpy

    install_with_local_backend(zip_path, data_dir)
    ops = bpy.ops.compact_sdf
    state = bpy.context.window_manager.compact_sdf
    settings = bpy.context.scene.compact_sdf
    settings.preset, settings.steps, settings.resolution, settings.interp_steps = "tiny", 20, 32, 3
    settings.fit_iterations = 20
    names = [_add_shape(i) for i in range(COUNT)]
    bpy.ops.object.empty_add(location=(0, -3, 0))
    bpy.context.active_object.name = "Marker"
    assert ops.backend_start() == {"FINISHED"}

    _select([*names, "Marker"])
    out: dict[str, Any] = {"encode": {"result": sorted(ops.encode_selected())}}
    out["encode"]["links"] = _links()
    out["encode"]["shapes"] = [[s.name, s.source, s.fidelity] for s in state.shapes]
    model_id = state.active_model().model_id
    out["model"] = model_id

    _select([])
    state.shape_index = 7  # nothing ticked: the active shape of the list
    before = {o.name for o in bpy.data.objects}
    rec = {"chosen": state.shapes[7].name, "result": sorted(ops.shapes_reconstruct())}
    rec["new"] = sorted({o.name for o in bpy.data.objects} - before)
    made = bpy.data.objects[rec["new"][0]]
    rec["code"], rec["faces"] = made.get("compact_sdf_code"), len(made.data.polygons)
    out["reconstruct"] = rec

    row: dict[str, Any] = {"disabled_message": _poll_error(ops.shapes_interpolate)}
    state.shapes[0].chosen = state.shapes[COUNT - 1].chosen = True
    row["result"] = sorted(ops.shapes_interpolate())
    row["count"] = sum(1 for o in bpy.data.objects if o.get("compact_sdf_role") == "interpolation")
    out["interpolate"] = row

    for i in (1, 2):
        bpy.ops.mesh.primitive_cylinder_add(radius=0.3, depth=0.6, location=(2.0 * i, -6, 0))
        bpy.context.active_object.name = f"Extra{i}"
    old_links = _links()
    _select(["Extra1", "Extra2"])
    add: dict[str, Any] = {"result": sorted(ops.add_to_model())}
    links = _links()
    add["links"] = {n: links.get(n) for n in ("Extra1", "Extra2")}
    add["old_links_unchanged"] = all(links[n] == v for n, v in old_links.items())
    add["shape_count"], add["listed"] = len(state.shapes), [s.name for s in state.shapes]
    out["add"] = add

    for s in state.shapes:
        s.chosen = s.name == names[3]
    ev = {"result": sorted(ops.shapes_evaluate())}
    ev["listed"] = state.shapes[names[3]].fidelity
    ev["on_object"] = bpy.data.objects[names[3]].get("compact_sdf_fidelity")
    out["evaluate"] = ev
    ops.backend_stop()
    return out


def _add_shape(i: int) -> str:
    """A small closed mesh per grid cell: spheres, cubes and cones of varied size."""
    import bpy

    loc = ((i % 5) * 1.5, (i // 5) * 1.5, 0.0)
    size = 0.3 + 0.05 * (i % 4)
    if i % 3 == 0:
        bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=2, radius=size, location=loc)
    elif i % 3 == 1:
        bpy.ops.mesh.primitive_cube_add(size=2 * size, location=loc)
    else:
        bpy.ops.mesh.primitive_cone_add(radius1=size, depth=2 * size, location=loc)
    bpy.context.active_object.name = f"Part{i:02d}"
    return f"Part{i:02d}"


def _poll_error(op: Any) -> str:
    try:
        op()
    except RuntimeError as exc:
        return str(exc)
    raise AssertionError("expected the operator to be greyed out")


def _select(names: list[str]) -> None:
    import bpy

    for obj in bpy.context.view_layer.objects:
        obj.select_set(obj.name in names)
    bpy.context.view_layer.objects.active = bpy.data.objects[names[0]] if names else None


def _links() -> dict[str, list[str]]:
    import bpy

    return {
        o.name: [o["compact_sdf_model"], o["compact_sdf_code"]]
        for o in bpy.data.objects
        if o.get("compact_sdf_role") == "source"
    }
