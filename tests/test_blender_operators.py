"""Every operator against a live backend in headless Blender (tiny preset), the bad selections, a dead
backend, a wrong token, cancel, and links that survive saving and reopening the .blend.

One Blender process runs the whole story (starting the backend and training once is the expensive part);
each test below checks one promise from what it recorded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from blender_harness import install_extension, run_story

pytestmark = [pytest.mark.blender, pytest.mark.slow]

TRAIN_STEPS = 40
RESOLUTION = 32


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, shared_meshes: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("blender_ops")
    knight = str(shared_meshes / "knight_small.ply")
    run = run_story(__file__, "scenario_story", root, timeout=600, knight=knight, out_dir=str(root / "out"))
    return run | {"out_dir": str(root / "out")}


def test_dead_backend_is_reported_and_creates_nothing(story: dict[str, Any]) -> None:
    dead = story["dead_backend"]
    assert "local backend is not running" in dead["error"]
    assert dead["objects_before"] == dead["objects_after"] and dead["links"] == 0


def test_wrong_token_is_reported_and_creates_nothing(story: dict[str, Any]) -> None:
    wrong = story["wrong_token"]
    assert "Encoding failed" in wrong["error"] and "401" in wrong["error"], wrong["error"]
    assert wrong["objects_before"] == wrong["objects_after"] and wrong["links"] == 0


def test_bad_selections_are_reported_per_object(story: dict[str, Any]) -> None:
    bad = story["bad_selections"]
    assert "'Marker' is not a mesh (empty object)" in bad["non_mesh"]
    assert "'Sheet' is not watertight (4 open or non-manifold edges)" in bad["open_mesh"]
    assert "Select one or more mesh objects" in bad["nothing"]
    assert bad["objects_before"] == bad["objects_after"] and bad["links"] == 0


def test_encode_links_each_valid_object_and_skips_the_rest(story: dict[str, Any]) -> None:
    enc = story["encode"]
    assert enc["result"] == ["FINISHED"]
    assert set(enc["links"]) == {"knight_small", "Ball", "Box"}
    assert len({link[0] for link in enc["links"].values()}) == 1  # one model
    assert {link[1] for link in enc["links"].values()} == {"knight_small", "Ball", "Box"}
    assert "Skipped 'Marker' is not a mesh" in story["output"]
    assert "'Box' has unapplied modifiers (Bevel)" in story["output"]
    assert enc["models_listed"] >= 1


def test_operators_on_unencoded_or_too_few_objects_report_and_create_nothing(story: dict[str, Any]) -> None:
    bad = story["bad_after_encode"]
    assert "Select two or more objects encoded" in bad["interp_one"]
    assert "Select two or more objects encoded" in bad["live_one"]
    assert "Select objects encoded with 'Encode Selected'" in bad["rec_plain"]
    assert bad["objects_before"] == bad["objects_after"]


def test_reconstruct_places_named_objects_on_their_sources(story: dict[str, Any]) -> None:
    rec = story["reconstruct"]
    assert sorted(rec["objects"]) == ["Ball SDF", "knight_small SDF"]
    for name, info in rec["objects"].items():
        assert info["collection"] == "Compact SDF"
        assert info["faces"] > 50
        assert info["location"] == pytest.approx(info["source_location"], abs=1e-5)
        # the reconstruction occupies its source's place (tiny preset: coarse, so a loose tolerance)
        assert info["center"] == pytest.approx(info["source_center"], abs=0.25 * info["source_size"]), name


def test_interpolate_makes_a_row_of_k_objects(story: dict[str, Any]) -> None:
    row = story["interpolate"]
    assert row["count"] == 3 and row["collection"] == "Interpolation"
    assert all(f > 50 for f in row["faces"])
    xs = [loc[0] for loc in row["locations"]]
    assert xs == sorted(xs) and xs[0] < xs[-1]
    # laid out by the shapes' sizes: no two boxes of the row, or of the row and its sources, overlap
    boxes = row["boxes"] + row["source_boxes"]
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if _overlap(a, b)]


def test_live_object_re_extracts_on_slider_change_and_refines(story: dict[str, Any]) -> None:
    live = story["live"]
    assert live["created_faces"] > 20
    # half-way between its sources (blended placement) in x and z, behind them: clear of them and the row
    assert [live["center"][0], live["center"][2]] == pytest.approx(live["expected_xz"], abs=0.3)
    others = story["interpolate"]["boxes"] + story["interpolate"]["source_boxes"]
    assert not [b for b in others if _overlap(live["box"], b)]
    assert live["moved_signature"] != live["created_signature"]  # the slider changed the geometry
    assert live["refined_resolution"] == RESOLUTION and live["refined_faces"] > live["moved_faces"]


def test_live_blend_of_three_shapes_follows_its_weights(story: dict[str, Any]) -> None:
    blend = story["blend"]
    assert blend["mode"] == "MIX" and len(blend["sources"].split(",")) == 3
    assert blend["created_weights"] == pytest.approx([1 / 3] * 3, abs=1e-6)
    assert blend["mixed"] != blend["created"]  # the weights changed the geometry
    assert blend["end_faces"] == blend["reconstruct_faces"]  # all weight on one shape: its reconstruction
    assert "Set a weight above 0" in blend["zero_message"]
    # the UI path (worker thread + timer, coalesced) ends on the latest position, as the direct path does
    assert blend["ui_idle"] and blend["ui_signature"] == blend["sync_signature"] != blend["before_ui"]


def test_export_and_import_codes(story: dict[str, Any]) -> None:
    codes = story["codes"]
    assert codes["npz_bytes"] > 0 and codes["json_bytes"] > 0
    assert codes["objects_after_reimport"] == codes["objects_before_import"]
    assert "Model " in story["output"] and "already had every shape in 'codes.json'" in story["output"]
    assert [d[:2] for d in codes["decoded"]] == [["Ball_copy", "Ball_copy"]]
    assert codes["decoded"][0][2] > 50 and codes["decoded"][0][3] == "Compact SDF"
    assert "Ball_copy" in codes["model_shapes"].split(", ")


def test_timer_path_follows_a_job_and_creates_its_object(story: dict[str, Any]) -> None:
    timer = story["timer"]
    assert timer["timer_registered"] and timer["stopped_polling"]
    assert timer["new_objects"] == ["Ball SDF.001"]
    assert timer["message"].startswith("Reconstructed 'Ball' as 'Ball SDF.001'")
    assert "succeeded" in timer["stages"]


def test_cancel_stops_training_and_links_nothing(story: dict[str, Any]) -> None:
    cancel = story["cancel"]
    assert cancel["status"] == "cancelled"
    assert cancel["links"] == 0 and "cancelled" in cancel["message"]


def test_links_survive_save_and_reopen(story: dict[str, Any]) -> None:
    reopened = story["reopened"]
    assert reopened["links"] == story["encode"]["links"]
    assert reopened["live_factor"] == pytest.approx(0.6)  # the last position the blend story set


def test_stopped_backend_reconstruct_reports_and_creates_nothing(story: dict[str, Any]) -> None:
    stopped = story["stopped"]
    assert "not running" in stopped["error"]
    assert stopped["objects_before"] == stopped["objects_after"]
    assert "Live update of" in stopped["live_message"] and "not running" in stopped["live_message"]
    assert stopped["live_kept"]


def _overlap(a: list[list[float]], b: list[list[float]]) -> bool:
    """Whether two world boxes ([lo, hi]) share interior volume."""
    return all(a[0][i] < b[1][i] and b[0][i] < a[1][i] for i in range(3))


# --- runs inside Blender -------------------------------------------------------------------------


def scenario_story(zip_path: str, knight: str, out_dir: str) -> dict[str, Any]:
    import bpy

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = install_extension(zip_path)
    prefs = bpy.context.preferences.addons[module].preferences
    prefs.python_path = sys.executable
    prefs.data_dir = str(out / "data")
    prefs.device = "cpu"
    ops = bpy.ops.compact_sdf
    connection = sys.modules[module + ".addon.connection"]
    story: dict[str, Any] = {}

    scene = bpy.context.scene
    bpy.ops.wm.ply_import(filepath=knight)
    knight_obj = bpy.context.active_object
    knight_obj.name = "knight_small"
    bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=2, radius=0.4, location=(1.5, 0, 0.5))
    bpy.context.active_object.name = "Ball"
    bpy.ops.mesh.primitive_cube_add(size=0.6, location=(3.0, 0, 0.5))
    box = bpy.context.active_object
    box.name = "Box"
    box.modifiers.new("Bevel", "BEVEL")
    bpy.ops.object.empty_add(location=(4, 0, 0))
    bpy.context.active_object.name = "Marker"
    bpy.ops.mesh.primitive_plane_add(location=(5, 0, 0))
    bpy.context.active_object.name = "Sheet"
    settings = scene.compact_sdf
    settings.preset = "tiny"
    settings.steps = TRAIN_STEPS
    settings.resolution = RESOLUTION
    settings.preview_resolution = 16
    settings.interp_steps = 3

    story["dead_backend"] = _expect_error(lambda: ops.encode_selected(), ["Ball"])
    assert ops.backend_start() == {"FINISHED"}
    local = connection.local_backend()
    prefs.backend_mode = "REMOTE"
    prefs.remote_url = local.url
    prefs.remote_token = "not-the-token"
    story["wrong_token"] = _expect_error(lambda: ops.encode_selected(), ["Ball"])
    prefs.backend_mode = "LOCAL"

    bad = {"objects_before": len(bpy.data.objects)}
    bad["non_mesh"] = _expect_error(lambda: ops.encode_selected(), ["Marker"])["error"]
    bad["open_mesh"] = _expect_error(lambda: ops.encode_selected(), ["Sheet"])["error"]
    bad["nothing"] = _expect_error(lambda: ops.encode_selected(), [])["error"]
    bad["objects_after"] = len(bpy.data.objects)
    bad["links"] = _count_links()
    story["bad_selections"] = bad

    _select(["knight_small", "Ball", "Box", "Marker"])
    result = ops.encode_selected()
    story["encode"] = {
        "result": sorted(result),
        "links": _links(),
        "models_listed": len(bpy.context.window_manager.compact_sdf.models),
    }

    after_encode = {"objects_before": len(bpy.data.objects)}
    after_encode["interp_one"] = _expect_error(lambda: ops.interpolate(), ["knight_small"])["error"]
    after_encode["live_one"] = _expect_error(lambda: ops.live_create(), ["Ball"])["error"]
    after_encode["rec_plain"] = _expect_error(lambda: ops.reconstruct(), ["Sheet"])["error"]
    after_encode["objects_after"] = len(bpy.data.objects)
    story["bad_after_encode"] = after_encode

    _select(["knight_small", "Ball"])
    assert ops.reconstruct() == {"FINISHED"}
    story["reconstruct"] = {
        "objects": {o.name: _describe(o) for o in bpy.data.objects if o.name.endswith(" SDF")}
    }

    _select(["knight_small", "Ball"])
    assert ops.interpolate() == {"FINISHED"}
    row = sorted(
        (o for o in bpy.data.objects if o.get("compact_sdf_role") == "interpolation"), key=lambda o: o.name
    )
    story["interpolate"] = {
        "count": len(row),
        "collection": row[0].users_collection[0].name,
        "faces": [len(o.data.polygons) for o in row],
        "locations": [list(o.location) for o in row],
        "boxes": [_bounds(o) for o in row],
        "source_boxes": [_bounds(bpy.data.objects[n]) for n in ("knight_small", "Ball")],
    }

    _select(["knight_small", "Ball"])
    assert ops.live_create() == {"FINISHED"}
    live_obj = next(o for o in bpy.data.objects if o.get("compact_sdf_role") == "live")
    live = {"created_faces": len(live_obj.data.polygons), "created_signature": _signature(live_obj)}
    ends = [_center(bpy.data.objects[n]) for n in ("knight_small", "Ball")]
    live["center"], live["box"] = _center(live_obj), _bounds(live_obj)
    live["expected_xz"] = [(ends[0][i] + ends[1][i]) / 2 for i in (0, 2)]
    live_obj.compact_sdf.live_factor = 0.9  # the update callback re-extracts (synchronously in background)
    live["moved_faces"] = len(live_obj.data.polygons)
    live["moved_signature"] = _signature(live_obj)
    bpy.context.view_layer.objects.active = live_obj
    assert ops.live_refine(resolution=RESOLUTION) == {"FINISHED"}
    live["refined_resolution"] = live_obj["compact_sdf_resolution"]
    live["refined_faces"] = len(live_obj.data.polygons)
    story["live"] = live
    story["blend"] = _blend_story(module, live_obj.name)

    _select(["knight_small"])
    codes = {}
    assert ops.export_codes(filepath=str(out / "codes.npz"), file_format="npz") == {"FINISHED"}
    assert ops.export_codes(filepath=str(out / "codes.json"), file_format="json") == {"FINISHED"}
    codes["npz_bytes"] = (out / "codes.npz").stat().st_size
    codes["json_bytes"] = (out / "codes.json").stat().st_size
    # the same codes again change nothing; a code under a new name becomes a new shape and a new object
    assert ops.import_codes(filepath=str(out / "codes.json")) == {"FINISHED"}
    codes["objects_after_reimport"] = len(bpy.data.objects)
    export = json.loads((out / "codes.json").read_text())
    row = export["names"].index("Ball")
    renamed = {**export, "names": ["Ball_copy"], "codes": [export["codes"][row]]}
    renamed["shapes"] = {"Ball_copy": export["shapes"]["Ball"]}
    (out / "renamed.json").write_text(json.dumps(renamed))
    codes["objects_before_import"] = len(bpy.data.objects)
    assert ops.import_codes(filepath=str(out / "renamed.json")) == {"FINISHED"}
    decoded = [o for o in bpy.data.objects if o.get("compact_sdf_role") == "decoded"]
    codes["decoded"] = [
        [o.name, o["compact_sdf_code"], len(o.data.polygons), o.users_collection[0].name] for o in decoded
    ]
    codes["model_shapes"] = bpy.context.window_manager.compact_sdf.active_model().shapes
    story["codes"] = codes

    story["timer"] = _timer_story(module)
    story["cancel"] = _cancel_story(module)

    blend = out / "links.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    live_obj = next(
        o
        for o in bpy.data.objects
        if o.get("compact_sdf_role") == "live" and o.compact_sdf.live_mode == "PATH"
    )
    story["reopened"] = {"links": _links(), "live_factor": live_obj.compact_sdf.live_factor}

    assert ops.backend_stop() == {"FINISHED"}
    story["stopped"] = _expect_error(lambda: ops.reconstruct(), ["knight_small"])
    before = _signature(live_obj)
    bpy.context.window_manager.compact_sdf.job_message = ""
    live_obj.compact_sdf.live_factor = 0.3  # no backend: said in the panel, the mesh kept
    story["stopped"]["live_message"] = bpy.context.window_manager.compact_sdf.job_message
    story["stopped"]["live_kept"] = _signature(live_obj) == before
    return story


def _blend_story(module: str, path_live: str) -> dict[str, Any]:
    """A live blend of three shapes: one weight each, set from the panel's properties; the UI path
    (a worker thread, answers applied by the timer, positions coalesced) on the two-shape object."""
    import time

    import bpy

    live = sys.modules[module + ".addon.live"]
    ops = bpy.ops.compact_sdf
    _select(["knight_small", "Ball", "Box"])
    assert ops.live_create() == {"FINISHED"}
    obj = next(o for o in bpy.data.objects if o.get("compact_sdf_role") == "live" and o.name != path_live)
    out: dict[str, Any] = {"mode": obj.compact_sdf.live_mode, "sources": obj["compact_sdf_sources"]}
    out["created_weights"] = list(obj.compact_sdf.mix_weights)[:3]
    out["created"] = _signature(obj)
    obj.compact_sdf.mix_weights = (0.6, 0.3, 0.1, 0, 0, 0, 0, 0)  # one update, synchronous in background
    out["mixed"] = _signature(obj)
    knight = next(i for i, n in enumerate(obj["compact_sdf_sources"].split(",")) if n == "knight_small")
    weights = [0.0] * 8
    weights[knight] = 1.0
    obj.compact_sdf.mix_weights = weights
    out["end_faces"] = len(obj.data.polygons)
    client = sys.modules[module + ".addon.connection"].client()
    res = bpy.context.scene.compact_sdf.preview_resolution
    out["reconstruct_faces"] = (
        len(client.mesh(obj["compact_sdf_model"], ["knight_small"], resolution=res).faces) // 3
    )
    bpy.context.window_manager.compact_sdf.job_message = ""
    obj.compact_sdf.mix_weights = (0,) * 8
    out["zero_message"] = bpy.context.window_manager.compact_sdf.job_message
    # the UI path: two positions sent while the first is out; both answered, the last one shown
    path = bpy.data.objects[path_live]
    out["before_ui"] = _signature(path)
    path.compact_sdf["live_factor"] = 0.2  # no update callback: the sends below are the UI's
    live._send(path.name, 16)
    path.compact_sdf["live_factor"] = 0.6
    flight = live._answers.flights[path.name]
    flight.waiting = 16
    deadline = time.monotonic() + 120
    while (live._tick() is not None) and time.monotonic() < deadline:
        time.sleep(0.02)
    out["ui_signature"] = _signature(path)
    path.compact_sdf.live_factor = 0.6  # the same position through the synchronous path
    out["sync_signature"] = _signature(path)
    out["ui_idle"] = not flight.busy and not flight.waiting
    return out


def _timer_story(module: str) -> dict[str, Any]:
    """The UI path: a job followed by the timer function (what bpy.app.timers calls every half second)."""
    import time

    import bpy

    connection = sys.modules[module + ".addon.connection"]
    jobs = sys.modules[module + ".addon.jobs"]
    encode = sys.modules[module + ".addon.operators_encode"]
    ball = bpy.data.objects["Ball"]
    body = {"kind": "extract", "model_id": ball["compact_sdf_model"], "shape": "Ball", "resolution": 24}
    before = {o.name for o in bpy.data.objects}
    jobs.track(connection.submit(body), "Reconstruct Ball", lambda j: encode.place_reconstruction(j, "Ball"))
    timer_registered = bpy.app.timers.is_registered(jobs._tick)
    progress_seen = set()
    deadline = time.monotonic() + 120
    next_call: float | None = 0.0
    while next_call is not None and time.monotonic() < deadline:
        next_call = jobs._tick()
        progress_seen.add(bpy.context.window_manager.compact_sdf.job_stage)
        time.sleep(0.2)
    if bpy.app.timers.is_registered(jobs._tick):  # background Blender never fires timers itself
        bpy.app.timers.unregister(jobs._tick)
    return {
        "timer_registered": timer_registered,
        "new_objects": sorted({o.name for o in bpy.data.objects} - before),
        "message": bpy.context.window_manager.compact_sdf.job_message,
        "stages": sorted(progress_seen),
        "stopped_polling": next_call is None,
    }


def _cancel_story(module: str) -> dict[str, Any]:
    """A long training followed by the UI timer path (track + tick), cancelled from the operator."""
    import time

    import bpy

    connection = sys.modules[module + ".addon.connection"]
    jobs = sys.modules[module + ".addon.jobs"]
    encode = sys.modules[module + ".addon.operators_encode"]
    bridge = sys.modules[module + ".addon.mesh_bridge"]
    bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=2, location=(0, 4, 0))
    victim = bpy.context.active_object
    victim.name = "Victim"
    depsgraph = bpy.context.evaluated_depsgraph_get()
    cl = connection.client()
    mesh = cl.upload_mesh(
        name="Victim", source=bridge.to_ply(bridge.world_triangles(victim, depsgraph)), fmt="ply"
    )
    body = {"kind": "train", "mesh_ids": [mesh["id"]], "preset": "tiny", "overrides": {"train.steps": 100000}}
    job = connection.submit(body)
    jobs.track(job, "Encode Victim", lambda j: encode.link_encoded(j, {"Victim": "Victim"}))
    deadline = time.monotonic() + 120
    while bpy.context.window_manager.compact_sdf.job_stage in ("", "queued") and time.monotonic() < deadline:
        jobs._tick()
        time.sleep(0.3)
    assert bpy.ops.compact_sdf.cancel_job() == {"FINISHED"}
    while jobs.active() and time.monotonic() < deadline:
        jobs._tick()
        time.sleep(0.3)
    return {
        "status": cl.get_job(job["id"])["status"],
        "links": int("compact_sdf_model" in victim),
        "message": bpy.context.window_manager.compact_sdf.job_message,
    }


def _select(names: list[str]) -> None:
    import bpy

    for obj in bpy.context.view_layer.objects:
        obj.select_set(obj.name in names)
    bpy.context.view_layer.objects.active = bpy.data.objects[names[0]] if names else None


def _expect_error(call: Any, select: list[str]) -> dict[str, Any]:
    """Run an operator that must fail with an ERROR report; record the message and what it left behind."""
    import bpy

    _select(select)
    before = len(bpy.data.objects), len(bpy.data.meshes)
    try:
        call()
    except RuntimeError as exc:
        error = str(exc)
    else:
        raise AssertionError(f"expected an error report selecting {select}")
    after = len(bpy.data.objects), len(bpy.data.meshes)
    return {"error": error, "objects_before": before, "objects_after": after, "links": _count_links()}


def _links() -> dict[str, list[str]]:
    import bpy

    return {
        o.name: [o["compact_sdf_model"], o["compact_sdf_code"]]
        for o in bpy.data.objects
        if o.get("compact_sdf_role") == "source"
    }


def _count_links() -> int:
    import bpy

    return sum(1 for o in bpy.data.objects if "compact_sdf_model" in o)


def _bounds(obj: Any) -> tuple[list[float], list[float]]:
    from mathutils import Vector

    corners = [obj.matrix_world @ Vector(c) for c in obj.bound_box]
    return [min(c[i] for c in corners) for i in range(3)], [max(c[i] for c in corners) for i in range(3)]


def _center(obj: Any) -> list[float]:
    lo, hi = _bounds(obj)
    return [(a + b) / 2 for a, b in zip(lo, hi, strict=True)]


def _describe(obj: Any) -> dict[str, Any]:
    import bpy

    source = bpy.data.objects[obj.name.removesuffix(" SDF")]
    lo, hi = _bounds(obj)
    slo, shi = _bounds(source)
    return {
        "collection": obj.users_collection[0].name,
        "faces": len(obj.data.polygons),
        "location": list(obj.location),
        "source_location": list(source.matrix_world.translation),
        "center": [(a + b) / 2 for a, b in zip(lo, hi, strict=True)],
        "source_center": [(a + b) / 2 for a, b in zip(slo, shi, strict=True)],
        "source_size": max(b - a for a, b in zip(slo, shi, strict=True)),
    }


def _signature(obj: Any) -> list[float]:
    lo, hi = _bounds(obj)
    return [round(v, 5) for v in (*lo, *hi)] + [len(obj.data.vertices)]
