"""Following backend jobs without freezing Blender: a ``bpy.app.timers`` poll in the UI, a blocking wait
in background mode (``blender -b`` has no event loop, so timers never fire there).

A watch names a handler that runs once the job succeeded; handlers create Blender data only then, so a
failed or cancelled job leaves nothing half-made. Progress goes to the panel (one row per watch, and
``WindowManager.compact_sdf`` for the latest) and to the status bar.

Watches outlive the backend process: the backend keeps its jobs on disk and requeues them when it
starts again, so stopping it only pauses the polling (``interrupt``) and a new start picks the same jobs
up again (``reattach``), progress, cancel and handler included.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bpy

from . import connection
from .client import ApiError, BackendUnreachable
from .notes import backend_line, level
from .runtime import state, tag_redraw

POLL_S = 0.5
# A new job is asked about this often for its first FAST_FOR_S seconds: a reconstruct of a model the
# backend holds loaded ends in about a second, and a 0.5 s poll would add up to half of that again.
FAST_POLL_S = 0.1
FAST_FOR_S = 3.0
HEALTH_S = 2.0  # the backend line (job counts) is asked for this often while jobs run, and when one ends
LOST_POLL_S = 2.0  # while the backend does not answer: keep the jobs, ask less often
FINISHED = ("succeeded", "failed", "cancelled")
WAITING = "interrupted: continues when the backend runs again"

Handler = Callable[[dict[str, Any]], str]  # gets the finished job, returns a one-line summary


@dataclass
class Watch:
    job_id: str
    label: str
    on_done: Handler
    on_finish: Callable[[dict[str, Any]], None] | None = None  # runs after any end (e.g. live re-queue)
    stage: str = "queued"
    fraction: float = 0.0
    since: float = field(default_factory=time.monotonic)


_watches: dict[str, Watch] = {}
_line_asked = 0.0  # monotonic time the backend line was last refreshed by the timer


def active() -> list[Watch]:
    return list(_watches.values())


def blocking() -> bool:
    """Whether jobs are waited for in place: background Blender, where timers never fire."""
    return bool(bpy.app.background)


def job_error(job: dict[str, Any]) -> str:
    """The user-facing sentence of a failed/cancelled job."""
    if job.get("status") == "cancelled":
        return "cancelled"
    err = job.get("error") or {}
    return str(err.get("message") or err.get("code") or "failed without a message")


def follow(
    job: dict[str, Any],
    label: str,
    on_done: Handler,
    on_finish: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[bool, str] | None:
    """Wait for ``job`` here when ``blocking()`` and return (ok, message); else track it and return None."""
    if not blocking():
        track(job, label, on_done, on_finish)
        return None
    final = job
    try:
        final = wait(job, label)
        return finish(final, label, on_done)
    except Exception as exc:  # the backend went away while waiting, or the handler failed: report it
        return False, f"{label}: {exc}"
    finally:
        if on_finish is not None:
            on_finish(final)


def track(
    job: dict[str, Any],
    label: str,
    on_done: Handler,
    on_finish: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Follow ``job`` from the UI timer; ``on_done`` runs in Blender's main thread once it succeeded."""
    _watches[job["id"]] = Watch(job["id"], label, on_done, on_finish)
    _show(job, label)
    _start_timer()


def wait(job: dict[str, Any], label: str, timeout_s: float = 3600.0) -> dict[str, Any]:
    """Block until ``job`` ends (background mode and tests); returns the final job."""
    deadline = time.monotonic() + timeout_s
    while job.get("status") not in FINISHED:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label}: no result after {timeout_s:.0f} s")
        time.sleep(POLL_S)
        job = connection.client().get_job(job["id"])
        _show(job, label)
    _show(job, label)
    return job


def say(message: str, how: str = "INFO") -> None:
    """The panel's line under the jobs, with its level (INFO, WARNING or ERROR: the icon)."""
    st = state()
    st.job_message, st.job_level = message, how


def finish(job: dict[str, Any], label: str, on_done: Handler) -> tuple[bool, str]:
    """Run the handler of a finished job; (ok, message) for the caller's report."""
    if job.get("status") != "succeeded":
        return False, f"{label}: {job_error(job)}"
    return True, on_done(job)


def cancel(job_ids: list[str] | None = None) -> int:
    """Ask the backend to cancel the followed jobs (all of them by default); returns how many were asked."""
    cl = connection.client()
    ids = [w.job_id for w in active() if job_ids is None or w.job_id in job_ids]
    for job_id in ids:
        cl.cancel_job(job_id)
    return len(ids)


def interrupt() -> list[str]:
    """The backend is being stopped: keep every watch (the backend requeues its jobs), stop polling,
    mark them waiting; returns their labels for the report."""
    _stop_timer()
    for watch in active():
        watch.stage = WAITING
    st = state()
    st.job_id = ""
    if _watches:
        st.job_stage = WAITING
    return [w.label for w in active()]


def reattach() -> int:
    """The backend answers again: follow the kept jobs from where they are; returns how many."""
    if _watches:
        _start_timer()
        _tick()
    return len(_watches)


def forget_all() -> None:
    _watches.clear()
    _stop_timer()


def _start_timer() -> None:
    if not bpy.app.timers.is_registered(_tick):
        bpy.app.timers.register(_tick, first_interval=FAST_POLL_S, persistent=True)


def _stop_timer() -> None:
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)


def _tick() -> float | None:
    try:
        cl = connection.client()
    except connection.BackendUnavailable as exc:
        return _lost(str(exc))
    ended = False
    for watch in active():
        try:
            job = cl.get_job(watch.job_id)
        except BackendUnreachable as exc:
            return _lost(str(exc))
        except ApiError as exc:  # e.g. another data folder: the job is gone for good
            _watches.pop(watch.job_id, None)
            say(f"{watch.label}: the backend no longer knows this job ({exc.message})", "ERROR")
            continue
        _show(job, watch.label)
        if job.get("status") in FINISHED:
            _watches.pop(watch.job_id, None)
            _complete(watch, job)
            ended = True
    _refresh_line(cl, force=ended)
    tag_redraw("VIEW_3D", "STATUSBAR", "PREFERENCES")
    return _interval() if _watches else None


def _interval() -> float:
    """Quick polls while a followed job is young, the usual ones after."""
    young = any(time.monotonic() - w.since < FAST_FOR_S for w in _watches.values())
    return FAST_POLL_S if young else POLL_S


def _refresh_line(cl: Any, force: bool) -> None:
    """Keep the panel's backend line (its running / queued counts) true while jobs run and after one
    ends; the line is otherwise written only when the backend is started or checked."""
    global _line_asked
    if not force and time.monotonic() - _line_asked < HEALTH_S:
        return
    _line_asked = time.monotonic()
    try:
        state().backend_status = backend_line(cl.health())
    except (BackendUnreachable, ApiError):  # the next get_job says so; the line keeps its last answer
        return


def _lost(reason: str) -> float | None:
    """No backend to ask: keep the jobs and say so; poll slowly so a returning backend is noticed."""
    for watch in active():
        watch.stage = WAITING
    if _watches:
        say(f"{len(_watches)} job(s) waiting for the backend: {reason}", "WARNING")
    tag_redraw("VIEW_3D", "STATUSBAR")
    return LOST_POLL_S if _watches else None


def _complete(watch: Watch, job: dict[str, Any]) -> None:
    try:
        ok, message = finish(job, watch.label, watch.on_done)
    except Exception as exc:
        traceback.print_exc()
        ok, message = False, f"{watch.label}: {exc}"
    if ok:  # objects made from a timer are not an operator's: give them their own undo step
        _undo_push(f"Compact SDF: {watch.label}")
    say(message, level(ok, message))
    print(f"Compact SDF: {level(ok, message).lower()}: {message}")
    if watch.on_finish is not None:
        watch.on_finish(job)


def _undo_push(label: str) -> None:
    try:
        bpy.ops.ed.undo_push(message=label)
    except RuntimeError as exc:  # no undo stack (e.g. a context without a window): the data is still made
        print(f"Compact SDF: no undo step for {label}: {exc}")


def describe(job: dict[str, Any]) -> tuple[str, float]:
    """The progress line and fraction of a job as the panel shows them."""
    progress = job.get("progress") or {}
    status = job.get("status", "")
    if status in FINISHED:
        return status, 1.0 if status == "succeeded" else float(progress.get("fraction") or 0.0)
    stage = str(progress.get("stage") or status)
    if "step" in progress and "total_steps" in progress:
        stage += f" {progress['step']}/{progress['total_steps']}"
        if progress.get("eta_s") is not None:
            stage += f", {float(progress['eta_s']):.0f} s left"
    return stage, float(progress.get("fraction") or 0.0)


def _show(job: dict[str, Any], label: str) -> None:
    stage, fraction = describe(job)
    watch = _watches.get(job["id"])
    if watch is not None:
        watch.stage, watch.fraction = stage, fraction
    st = state()
    st.job_id = job["id"] if job.get("status") not in FINISHED else ""
    st.job_label = label
    st.job_progress = fraction
    st.job_stage = stage


def draw_status(self: Any, context: bpy.types.Context) -> None:
    """Status-bar entry while a job runs (appended to ``STATUSBAR_HT_header``)."""
    st = context.window_manager.compact_sdf
    if st.job_id:
        self.layout.progress(factor=st.job_progress, type="BAR", text=f"{st.job_label}: {st.job_stage}")
