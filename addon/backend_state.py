"""What the panel knows about the backend (health line, model list, start log) and the non-blocking start
of a local one. Operators and job handlers call these; they import no operator module.
"""

from __future__ import annotations

import bpy

from . import connection, jobs
from .constants import FIDELITY, LINK_CODE, LINK_MODEL, LINK_ROLE
from .notes import backend_line
from .runtime import state, tag_redraw

START_POLL_S = 0.25

_start_log: list[str] = []


def start_log() -> list[str]:
    """The backend's last log lines after a failed start, for the panel."""
    return _start_log


def refresh_models(context: bpy.types.Context) -> int:
    """Reload the model list from the backend into the panel; returns how many models there are."""
    st = state(context)
    models = connection.client(context).list_models()
    keep = st.active_model().model_id if st.active_model() else ""
    st.models.clear()
    for m in models:
        item = st.models.add()
        item.name = m.get("name") or m["id"][:8]
        item.model_id = m["id"]
        item.status = m.get("status", "")
        item.preset = m.get("preset", "")
        item.shapes = ", ".join(s["name"] for s in m.get("shapes", []))
    select_model(context, keep)
    return len(st.models)


def select_model(context: bpy.types.Context, model_id: str) -> None:
    """Make ``model_id`` the list's active model (the last one when it is not listed)."""
    st = state(context)
    ids = [m.model_id for m in st.models]
    st.model_index = ids.index(model_id) if model_id in ids else len(ids) - 1
    fill_shapes(context)


def fill_shapes(context: bpy.types.Context) -> None:
    """The shape list of the active model: each shape's name, the scene object that holds its code (a
    source or decoded object) and its fidelity when an evaluation recorded one (no request)."""
    st = state(context)
    item = st.active_model()
    chosen = {s.name for s in st.shapes if s.chosen}
    st.shapes.clear()
    if item is None:
        return
    holders = {
        str(o.get(LINK_CODE)): o
        for o in bpy.data.objects
        if o.get(LINK_MODEL) == item.model_id and o.get(LINK_ROLE, "source") in ("source", "decoded")
    }
    for name in (n for n in item.shapes.split(", ") if n):
        shape = st.shapes.add()
        shape.name = name
        holder = holders.get(name)
        shape.source = holder.name if holder is not None else ""
        shape.fidelity = str(holder.get(FIDELITY, "")) if holder is not None else ""
        shape.chosen = name in chosen
    st.shape_index = min(st.shape_index, len(st.shapes) - 1)


def check_backend(context: bpy.types.Context) -> bool:
    """Ask the backend for its health and write a one-line status for the panel; True when it answered
    (and then the jobs kept across a stop are followed again)."""
    st = state(context)
    try:
        health = connection.client(context).health()
    except Exception as exc:
        st.backend_ok = False
        st.backend_status = f"Backend not available: {exc}"
        return False
    st.backend_ok = True
    st.backend_status = backend_line(health)
    jobs.reattach()
    return True


def start_backend(context: bpy.types.Context, background: bool) -> tuple[str, str]:
    """Start the local backend; (report level, message). Background mode waits here (``blender -b`` has no
    event loop, so timers never fire); the UI waits in a worker thread and ``watch_start`` finishes."""
    global _start_log
    st = state(context)
    _start_log = []
    try:
        if background:
            connection.start_local(context)
        elif connection.begin_start(context) is not None:
            st.backend_ok = False
            st.backend_status = "Starting the backend…"
            if not bpy.app.timers.is_registered(watch_start):
                bpy.app.timers.register(watch_start, first_interval=START_POLL_S, persistent=True)
            return "INFO", "Starting the backend; the Compact SDF panel says when it is running"
    except Exception as exc:
        return "ERROR", _start_failed(exc)
    return _started(context)


def stop_backend(context: bpy.types.Context) -> tuple[str, str]:
    """Stop the local backend; the jobs it was running or had queued are kept and named in the message."""
    interrupted = jobs.interrupt()
    st = state(context)
    if not connection.stop_local():
        return "WARNING", "No local backend was running"
    st.backend_ok = False
    message = "Backend stopped"
    if interrupted:
        message += (
            f" during {len(interrupted)} job(s): {', '.join(interrupted)}. "
            "The backend keeps them; they continue when it is started again"
        )
    st.backend_status = message
    jobs.say(message)
    return "INFO", message


def _started(context: bpy.types.Context) -> tuple[str, str]:
    url = connection.local_backend().url
    check_backend(context)
    try:
        refresh_models(context)
    except Exception as exc:
        return "WARNING", f"Backend running at {url}, but listing models failed: {exc}"
    followed = [w.label for w in jobs.active()]
    if not followed:
        return "INFO", f"Backend running at {url}"
    again = f"Following {len(followed)} job(s) again: {', '.join(followed)}"
    jobs.say(again)
    return "INFO", f"Backend running at {url}; {again}"


def _start_failed(exc: Exception) -> str:
    """The error's first line as the panel status, the log lines after it below; the full text to report."""
    global _start_log
    st = state()
    lines = str(exc).splitlines() or [type(exc).__name__]
    _start_log = lines[1:]
    st.backend_ok = False
    st.backend_status = f"Start failed: {lines[0]}"
    return f"Could not start the backend: {exc}"


def watch_start() -> float | None:
    """Poll the start's worker thread; once it is done, finish here in the main thread (bpy is not
    thread-safe, so only this side writes the panel state)."""
    start = connection.starting()
    if start is None:  # stopped (or unregistered) while starting
        return None
    if not start.done():
        return START_POLL_S
    try:
        connection.finish_start()
    except Exception as exc:
        message = _start_failed(exc)
    else:
        message = _started(bpy.context)[1]
    print(f"Compact SDF: {message}")
    tag_redraw("VIEW_3D", "PREFERENCES")
    return None


def shutdown() -> None:
    """Unregister: no start timer, no backend process left behind, ready or still starting."""
    if bpy.app.timers.is_registered(watch_start):
        bpy.app.timers.unregister(watch_start)
    connection.stop_local()
