"""The one place that knows which backend the add-on talks to: a remote URL + token from the
preferences, or a local backend this Blender session started through the launcher.
"""

from __future__ import annotations

import atexit
from typing import Any

import bpy

from .preferences import get_prefs

_local: Any = None  # the running launcher.LocalBackend, if this session started one
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
    if _local is None or not _local.alive():
        raise BackendUnavailable(
            "the local backend is not running: press 'Start backend' in the Compact SDF panel"
        )
    return Client(_local.url, _local.token)


def submit(body: dict[str, Any], context: bpy.types.Context | None = None) -> dict[str, Any]:
    """Queue a job described by an API body (``{"kind": ..., ...}``); returns the job."""
    params = {k: v for k, v in body.items() if k != "kind"}
    return client(context).create_job(body["kind"], **params)


def start_local(context: bpy.types.Context | None = None) -> Any:
    """Start the local backend with the interpreter, device and data folder from the preferences."""
    global _local, _atexit_registered
    from .launcher import LocalBackend

    if _local is not None and _local.alive():
        return _local
    prefs = get_prefs(context)
    python = prefs.resolved_python()
    if not python.exists():
        raise BackendUnavailable(
            f"no backend Python at {python}: press 'Set up backend' in the add-on preferences "
            "or choose an interpreter"
        )
    backend = LocalBackend(python, prefs.resolved_data_dir(), device=prefs.device)
    backend.start(timeout=float(prefs.start_timeout))
    _local = backend
    if not _atexit_registered:  # quitting Blender must not leave the backend running
        atexit.register(stop_local)
        _atexit_registered = True
    return backend


def stop_local() -> bool:
    """Stop the backend this session started; False when there was none."""
    global _local
    if _local is None:
        return False
    backend, _local = _local, None
    backend.stop()
    return True
