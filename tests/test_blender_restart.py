"""Stopping the backend during jobs says which jobs it interrupted, and after a new start the add-on follows
the same jobs again: progress, cancel, and the result linked to its object (issue 14, Blender).

Real headless Blender, a real backend on loopback (one worker), the UI path (timers driven by hand). No
step depends on how fast the machine is: the long job has 100000 steps, so it is still training when
it is stopped and again after the restart, and the short job waits behind it in the one worker's queue
until the long one is cancelled; every wait is for a state, with a generous deadline.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from blender_harness import install_with_local_backend, local_story

pytestmark = [pytest.mark.blender, pytest.mark.slow]

LONG_STEPS = 100_000
SHORT_STEPS = 20


story = local_story("scenario_restart")


def test_stop_names_the_interrupted_jobs(story: dict[str, Any]) -> None:
    stopped = story["stopped"]
    assert stopped["result"] == ["FINISHED"]
    assert "Backend stopped during 2 job(s): Encode Long, Encode Short" in stopped["message"]
    assert "continue when it is started again" in stopped["message"]
    assert stopped["followed"] == ["Encode Long", "Encode Short"]  # kept, not forgotten
    assert stopped["followed_after_tick"] == ["Encode Long", "Encode Short"]  # a dead backend drops nothing
    assert not stopped["cancel_enabled"]  # greyed out while there is no backend to ask


def test_restart_follows_the_same_jobs_with_progress_and_cancel(story: dict[str, Any]) -> None:
    again = story["restarted"]
    assert again["message"] == "Following 2 job(s) again: Encode Long, Encode Short"
    assert again["followed"] == story["job_ids"]
    assert f"/{LONG_STEPS}" in again["long_stage"] and again["long_step"] > 0
    assert again["cancel_enabled"] and again["cancel"] == ["FINISHED"]


def test_jobs_end_as_asked_and_the_finished_one_is_linked(story: dict[str, Any]) -> None:
    end = story["end"]
    assert end["statuses"] == {"Long": "cancelled", "Short": "succeeded"}
    assert end["links"]["Long"] is None
    assert end["links"]["Short"] == [end["short_model"], "Short"]
    assert any(m.startswith("Encode Long: cancelled") for m in end["messages"])
    assert any(m.startswith("Encoded Short into model") for m in end["messages"])
    assert end["followed"] == []


# --- runs inside Blender -------------------------------------------------------------------------


def scenario_restart(zip_path: str, data_dir: str) -> dict[str, Any]:
    import bpy

    module, _ = install_with_local_backend(zip_path, data_dir)
    jobs = sys.modules[module + ".addon.jobs"]
    connection = sys.modules[module + ".addon.connection"]
    jobs.blocking = lambda: False  # the UI path: follow with the timer, which this test drives by hand
    ops = bpy.ops.compact_sdf
    state = bpy.context.window_manager.compact_sdf
    bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=2, radius=0.5, location=(0, 0, 0))
    bpy.context.active_object.name = "Long"
    bpy.ops.mesh.primitive_cube_add(size=0.8, location=(2, 0, 0))
    bpy.context.active_object.name = "Short"
    assert ops.backend_start() == {"FINISHED"}

    settings = bpy.context.scene.compact_sdf
    settings.preset = "tiny"
    ids = []
    for name, steps in (("Long", LONG_STEPS), ("Short", SHORT_STEPS)):
        settings.steps = steps
        _select(name)
        assert ops.encode_selected() == {"FINISHED"}
        ids.append(next(w.job_id for w in jobs.active() if w.label == f"Encode {name}"))
    out: dict[str, Any] = {"job_ids": ids}
    messages: list[str] = []

    def long_stage() -> str:
        return next((w.stage for w in jobs.active() if w.job_id == ids[0]), "")

    _drive(jobs, messages, lambda: f"/{LONG_STEPS}" in long_stage(), "the long job trains")
    stopped: dict[str, Any] = {"result": sorted(ops.backend_stop()), "message": state.job_message}
    stopped["followed"] = [w.label for w in jobs.active()]
    jobs._tick()  # the timer once more with no backend
    stopped["followed_after_tick"] = [w.label for w in jobs.active()]
    stopped["cancel_enabled"] = bpy.ops.compact_sdf.cancel_job.poll()
    out["stopped"] = stopped

    assert ops.backend_start() == {"FINISHED"}
    restarted: dict[str, Any] = {"message": state.job_message}
    restarted["followed"] = [w.job_id for w in jobs.active()]

    def trains_again() -> bool:
        job = connection.client().get_job(ids[0])
        return job["status"] == "running" and int((job.get("progress") or {}).get("step") or 0) > 0

    _drive(jobs, messages, lambda: trains_again() and f"/{LONG_STEPS}" in long_stage(), "training resumes")
    restarted["long_stage"] = long_stage()
    restarted["long_step"] = int(connection.client().get_job(ids[0])["progress"]["step"])
    restarted["cancel_enabled"] = bpy.ops.compact_sdf.cancel_job.poll()
    restarted["cancel"] = sorted(ops.cancel_job(job_id=ids[0]))
    out["restarted"] = restarted

    _drive(jobs, messages, lambda: not jobs.active(), "both jobs end", timeout=600)
    cl = connection.client()
    statuses = {
        name: cl.get_job(job_id)["status"] for name, job_id in zip(("Long", "Short"), ids, strict=True)
    }
    out["end"] = {
        "statuses": statuses,
        "links": {n: _link(bpy.data.objects[n]) for n in ("Long", "Short")},
        "short_model": cl.get_job(ids[1]).get("model_id"),
        "messages": messages,
        "followed": [w.job_id for w in jobs.active()],
    }
    ops.backend_stop()
    return out


def _drive(jobs: Any, messages: list[str], done: Any, what: str, timeout: float = 300) -> None:
    """Call the jobs timer as Blender would until ``done()``; keep every message it writes."""
    import bpy

    state = bpy.context.window_manager.compact_sdf
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        jobs._tick()
        if state.job_message and (not messages or messages[-1] != state.job_message):
            messages.append(state.job_message)
        time.sleep(0.2)
    if bpy.app.timers.is_registered(jobs._tick):  # background Blender never fires timers itself
        bpy.app.timers.unregister(jobs._tick)


def _select(name: str) -> None:
    import bpy

    for obj in bpy.context.view_layer.objects:
        obj.select_set(obj.name == name)
    bpy.context.view_layer.objects.active = bpy.data.objects[name]


def _link(obj: Any) -> list[str] | None:
    return [obj["compact_sdf_model"], obj["compact_sdf_code"]] if "compact_sdf_model" in obj else None
