"""Following backend jobs without freezing Blender: a ``bpy.app.timers`` poll in the UI, a blocking wait
in background mode (``blender -b`` has no event loop, so timers never fire there).

A watch names a handler that runs once the job succeeded; handlers create Blender data only then, so a
failed or cancelled job leaves nothing half-made. Progress goes to the panel (``WindowManager.compact_sdf``)
and to the status bar.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bpy

POLL_S = 0.5
FINISHED = ("succeeded", "failed", "cancelled")

Handler = Callable[[dict[str, Any]], str]  # gets the finished job, returns a one-line summary


@dataclass
class Watch:
    job_id: str
    label: str
    on_done: Handler
    on_finish: Callable[[dict[str, Any]], None] | None = None  # runs after any end (e.g. live re-queue)


_watches: dict[str, Watch] = {}


def active() -> list[Watch]:
    return list(_watches.values())


def job_error(job: dict[str, Any]) -> str:
    """The user-facing sentence of a failed/cancelled job."""
    if job.get("status") == "cancelled":
        return "cancelled"
    err = job.get("error") or {}
    return str(err.get("message") or err.get("code") or "failed without a message")


def track(
    job: dict[str, Any],
    label: str,
    on_done: Handler,
    on_finish: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Follow ``job`` from the UI timer; ``on_done`` runs in Blender's main thread once it succeeded."""
    _watches[job["id"]] = Watch(job["id"], label, on_done, on_finish)
    _show(job, label)
    if not bpy.app.timers.is_registered(_tick):
        bpy.app.timers.register(_tick, first_interval=POLL_S, persistent=True)


def wait(job: dict[str, Any], label: str, timeout_s: float = 3600.0) -> dict[str, Any]:
    """Block until ``job`` ends (background mode and tests); returns the final job."""
    from .connection import client

    deadline = time.monotonic() + timeout_s
    while job.get("status") not in FINISHED:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label}: no result after {timeout_s:.0f} s")
        time.sleep(POLL_S)
        job = client().get_job(job["id"])
        _show(job, label)
    _show(job, label)
    return job


def finish(job: dict[str, Any], label: str, on_done: Handler) -> tuple[bool, str]:
    """Run the handler of a finished job; (ok, message) for the caller's report."""
    if job.get("status") != "succeeded":
        return False, f"{label}: {job_error(job)}"
    return True, on_done(job)


def cancel_all() -> int:
    """Ask the backend to cancel every followed job; returns how many were asked."""
    from .connection import client

    asked = 0
    for watch in active():
        client().cancel_job(watch.job_id)
        asked += 1
    return asked


def forget_all() -> None:
    _watches.clear()
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)


def _tick() -> float | None:
    from .connection import client

    for watch in active():
        try:
            job = client().get_job(watch.job_id)
        except Exception as exc:  # a dead backend must not kill the timer; say so in the panel
            _runtime().job_message = f"{watch.label}: lost the backend ({exc})"
            _watches.pop(watch.job_id, None)
            continue
        _show(job, watch.label)
        if job.get("status") not in FINISHED:
            continue
        _watches.pop(watch.job_id, None)
        try:
            ok, message = finish(job, watch.label, watch.on_done)
        except Exception as exc:
            traceback.print_exc()
            ok, message = False, f"{watch.label}: {exc}"
        if ok:  # objects made from a timer are not an operator's: give them their own undo step
            _undo_push(f"Compact SDF: {watch.label}")
        _runtime().job_message = message
        print(f"Compact SDF: {message}")
        if watch.on_finish is not None:
            watch.on_finish(job)
    _redraw()
    return POLL_S if _watches else None


def _undo_push(label: str) -> None:
    try:
        bpy.ops.ed.undo_push(message=label)
    except RuntimeError as exc:  # no undo stack (e.g. a context without a window): the data is still made
        print(f"Compact SDF: no undo step for {label}: {exc}")


def _runtime() -> Any:
    return bpy.context.window_manager.compact_sdf


def _show(job: dict[str, Any], label: str) -> None:
    state = _runtime()
    progress = job.get("progress") or {}
    status = job.get("status", "")
    state.job_id = job["id"] if status not in FINISHED else ""
    state.job_label = label
    state.job_progress = 1.0 if status == "succeeded" else float(progress.get("fraction") or 0.0)
    stage = str(progress.get("stage") or status)
    if "step" in progress and "total_steps" in progress:
        stage += f" {progress['step']}/{progress['total_steps']}"
        if progress.get("eta_s") is not None:
            stage += f", {float(progress['eta_s']):.0f} s left"
    state.job_stage = stage if status not in FINISHED else status


def _redraw() -> None:
    wm = bpy.context.window_manager
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "STATUSBAR", "PREFERENCES"):
                area.tag_redraw()


def draw_status(self: Any, context: bpy.types.Context) -> None:
    """Status-bar entry while a job runs (appended to ``STATUSBAR_HT_header``)."""
    state = context.window_manager.compact_sdf
    if state.job_id:
        self.layout.progress(
            factor=state.job_progress, type="BAR", text=f"{state.job_label}: {state.job_stage}"
        )
