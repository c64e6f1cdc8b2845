"""The one place that knows which backend the add-on talks to: a remote URL + token from the
preferences, or a local backend this Blender session started through the launcher.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

import bpy

from .preferences import get_prefs

_local: Any = None  # the running launcher.LocalBackend, if this session started one
_starting: LocalStart | None = None  # one launched but not answering yet
_atexit_registered = False


class BackendUnavailable(Exception):
    """No backend to talk to; the message says what to do."""


def local_backend() -> Any:
    return _local


def client(context: bpy.types.Context | None = None) -> Any:
    """A client for the configured backend; raises BackendUnavailable with advice when there is none."""
    from .client import Client

    prefs = get_prefs(context)
    if prefs.backend_mode == "REMOTE":
        if not prefs.remote_url:
            raise BackendUnavailable("set the remote backend's URL in the add-on preferences")
        return Client(prefs.remote_url, prefs.remote_token)
    if _starting is not None:
        raise BackendUnavailable("the local backend is still starting: the panel says when it is running")
    if _local is None or not _local.alive():
        raise BackendUnavailable(
            "the local backend is not running: press 'Start backend' in the Compact SDF panel"
        )
    return Client(_local.url, _local.token)


def problem(context: bpy.types.Context | None = None) -> str | None:
    """Why no backend can be asked now, or None; cheap enough for an operator's ``poll`` (no request)."""
    try:
        client(context)
    except BackendUnavailable as exc:
        text = str(exc)
        return text[:1].upper() + text[1:]
    return None


def submit(body: dict[str, Any], context: bpy.types.Context | None = None) -> dict[str, Any]:
    """Queue a job described by an API body (``{"kind": ..., ...}``); returns the job."""
    params = {k: v for k, v in body.items() if k != "kind"}
    return client(context).create_job(body["kind"], **params)


class LocalStart:
    """A launched local backend that a worker thread waits for; the thread never touches bpy, the main
    thread reads ``done()`` and ``error`` (a timer in the UI, a blocking ``wait`` in background mode)."""

    def __init__(self, backend: Any, timeout: float) -> None:
        self.backend = backend
        self.error: Exception | None = None
        self._thread = threading.Thread(
            target=self._wait, args=(timeout,), name="compact-sdf-start", daemon=True
        )
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self) -> None:
        self._thread.join()

    def _wait(self, timeout: float) -> None:
        try:
            self.backend.wait_ready(timeout)
        except Exception as exc:  # handed to the main thread, which reports it
            self.error = exc


def starting() -> LocalStart | None:
    return _starting


def begin_start(context: bpy.types.Context | None = None) -> LocalStart | None:
    """Launch the local backend with the interpreter, device and data folder from the preferences and
    wait for it in a worker thread; None when it already runs, the same start while one is under way."""
    global _starting, _atexit_registered
    from .launcher import LocalBackend

    if _local is not None and _local.alive():
        return None
    if _starting is not None:
        return _starting
    prefs = get_prefs(context)
    python = prefs.resolved_python()
    if not python.exists():
        raise BackendUnavailable(
            f"no backend Python at {python}: press 'Set up backend' in the add-on preferences "
            "or choose an interpreter"
        )
    backend = LocalBackend(python, prefs.resolved_data_dir(), device=prefs.device)
    backend.launch()
    if not _atexit_registered:  # quitting Blender must not leave the backend running, ready or not
        atexit.register(stop_local)
        _atexit_registered = True
    _starting = LocalStart(backend, float(prefs.start_timeout))
    return _starting


def finish_start() -> Any:
    """Main thread, once ``starting().done()``: the backend, now the local one, or the start's error."""
    global _local, _starting
    start, _starting = _starting, None
    if start is None:
        raise BackendUnavailable("the start was stopped")
    if start.error is not None:
        start.backend.stop()
        raise start.error
    _local = start.backend
    return _local


def start_local(context: bpy.types.Context | None = None) -> Any:
    """Start the local backend and block until it answers (background mode, scripts)."""
    start = begin_start(context)
    if start is None:
        return _local
    start.wait()
    return finish_start()


def stop_local() -> bool:
    """Stop the backend this session started or is starting; False when there was none."""
    global _local, _starting
    backends = [b for b in (_local, _starting.backend if _starting else None) if b is not None]
    _local = _starting = None
    for backend in backends:  # a starting one's worker sees the process end and returns
        backend.stop()
    return bool(backends)
