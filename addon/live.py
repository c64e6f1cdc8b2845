"""Live blending: a live object's mesh follows its Blend slider (or its per-shape weights) as they move.

Each update is one request that answers with the mesh (``Client.mesh``: the model stays loaded in
the backend's resident process), sent from a worker thread so Blender never waits on it, and
applied in the main thread by a timer. While the user drags, updates go out at the preview
resolution and coalesce (one in flight per object; when it lands, the latest position goes next);
once the weights have rested for ``REFINE_DELAY_S`` the object is meshed again at the scene's
resolution, as a viewport refines when the user lets go. In background mode (scripts, tests) an
update is done at once, in the calling thread.

Its own module (not an operator module) because the properties' update callbacks and the live
operators both need it.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import bpy

from . import connection, mesh_bridge
from .constants import LINK_MODEL, LINK_ROLE, LINK_SOURCES, MIX_SLOTS, NOTE, REFINE_DELAY_S
from .jobs import say
from .notes import Warn, blend_note, blend_prefix
from .runtime import state, tag_redraw

TICK_S = 0.02  # how often the timer looks for answers


@dataclass
class _Flight:
    """What one live object has going: a request out, a newer position waiting, a refine due."""

    busy: bool = False
    waiting: int = 0  # resolution of the position that moved while a request was out (0: none)
    refine_at: float = 0.0  # monotonic time of the full-resolution update (0: none due)


@dataclass
class _Answers:
    flights: dict[str, _Flight] = field(default_factory=dict)
    done: queue.Queue = field(default_factory=queue.Queue)  # (name, resolution, LiveMesh | Exception)


_answers = _Answers()


def live_weights(t: float, count: int) -> list[list[float]]:
    """Code weights for position ``t`` along the polyline through ``count`` shapes (rows sum to 1)."""
    t = min(max(t, 0.0), 1.0) * (count - 1)
    seg = min(int(t), count - 2)
    local = t - seg
    row = [0.0] * count
    row[seg], row[seg + 1] = 1.0 - local, local
    return [row]


def sources(obj: bpy.types.Object) -> list[str]:
    return [s for s in str(obj.get(LINK_SOURCES, "")).split(",") if s]


def weights_of(obj: bpy.types.Object) -> list[float]:
    """The object's blend weights now: its slider's position on the path, or its per-shape mix."""
    names = sources(obj)
    settings = obj.compact_sdf
    if settings.live_mode == "MIX":
        return [float(w) for w in settings.mix_weights[: len(names)]]
    return live_weights(settings.live_factor, len(names))[0]


def report(message: str | None) -> None:
    """A live update's sentence on the panel's line: a ``Warn`` about the mesh, or an error."""
    if message:
        say(message, "WARNING" if isinstance(message, Warn) else "ERROR")


def request_update(obj: bpy.types.Object, resolution: int | None = None) -> str | None:
    """Re-mesh a live object at its current weights; returns an error sentence, a ``Warn`` about the
    mesh it got (background mode, where the update is done at once), or None.

    ``resolution=None`` is a drag tick: the preview resolution now, the scene's once it rests.
    """
    if obj.get(LINK_ROLE) != "live":
        return f"'{obj.name}' is not a live interpolation object"
    names = sources(obj)
    if len(names) > MIX_SLOTS:
        return f"'{obj.name}' blends {len(names)} shapes; a live object takes at most {MIX_SLOTS}"
    if not sum(weights_of(obj)) > 0:
        return f"Set a weight above 0 on '{obj.name}'"
    settings = bpy.context.scene.compact_sdf
    res = resolution or settings.preview_resolution
    flight = _answers.flights.setdefault(obj.name, _Flight())
    if resolution is None and settings.preview_resolution < settings.resolution and not bpy.app.background:
        flight.refine_at = time.monotonic() + REFINE_DELAY_S
    try:
        client = connection.client()
    except Exception as exc:  # no backend to ask (stopped, starting, no URL): say so, change nothing
        return f"Live update of '{obj.name}' failed: {exc}"
    if bpy.app.background:
        return _apply(obj.name, res, _fetch(client, _body(obj, res, settings)))
    if flight.busy:  # coalesce: when the answer lands, the latest position goes next
        flight.waiting = max(flight.waiting, res)
        return None
    _send(obj.name, res)
    return None


def _body(obj: bpy.types.Object, resolution: int, settings: Any) -> dict[str, Any]:
    return {
        "model_id": obj[LINK_MODEL],
        "shapes": sources(obj),
        "weights": weights_of(obj),
        "resolution": resolution,
        "mode": settings.interp_mode,
        "join_gap": round(settings.interp_join_gap, 6),
    }


def _fetch(client: Any, body: dict[str, Any]) -> Any:
    """The mesh, or the exception that stopped it (a thread must not raise into nowhere)."""
    try:
        return client.mesh(body.pop("model_id"), body.pop("shapes"), body.pop("weights"), **body)
    except Exception as exc:
        return exc


def _send(name: str, resolution: int) -> None:
    obj = bpy.data.objects.get(name)
    if obj is None:
        _answers.flights.pop(name, None)
        return
    body = _body(obj, resolution, bpy.context.scene.compact_sdf)
    try:
        client = connection.client()
    except Exception as exc:
        report(f"Live update of '{name}' failed: {exc}")
        return
    _answers.flights[name].busy = True

    def run() -> None:
        _answers.done.put((name, resolution, _fetch(client, body)))

    threading.Thread(target=run, name=f"live-{name}", daemon=True).start()
    if not bpy.app.timers.is_registered(_tick):
        bpy.app.timers.register(_tick, first_interval=TICK_S)


def _tick() -> float | None:
    """Apply the answers that landed, send the positions that waited, and the refines that are due."""
    while not _answers.done.empty():
        name, res, got = _answers.done.get()
        flight = _answers.flights.get(name)
        if flight is None:
            continue
        flight.busy = False
        report(_apply(name, res, got))
        if flight.waiting:
            waiting, flight.waiting = flight.waiting, 0
            _send(name, waiting)
    now = time.monotonic()
    for name, flight in list(_answers.flights.items()):
        if flight.refine_at and now >= flight.refine_at and not flight.busy:
            flight.refine_at = 0.0
            _send(name, bpy.context.scene.compact_sdf.resolution)
    if any(f.busy or f.refine_at for f in _answers.flights.values()):
        return TICK_S
    return None


def _apply(name: str, resolution: int, got: Any) -> str | None:
    """Swap the object's geometry for the answer (in place: the object keeps its identity) and keep
    what is wrong with the new mesh on the object, where the panel shows it under the weights."""
    if isinstance(got, Exception):
        return f"Live update of '{name}' failed: {got}"
    obj = bpy.data.objects.get(name)
    if obj is None:
        return None
    tris = mesh_bridge.Triangles(got.vertices, got.faces)
    mesh_bridge.replace_geometry(obj.data, tris, mesh_bridge.centre(tris))
    obj["compact_sdf_resolution"] = int(resolution)
    obj[NOTE] = got.lost
    if not got.lost and state().job_message.startswith(blend_prefix(name)):
        say("")  # whole again: the line's warning about this object no longer holds
    tag_redraw("VIEW_3D")
    return blend_note(name, got.lost)


def reset() -> None:
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    _answers.flights.clear()
    while not _answers.done.empty():
        _answers.done.get()
