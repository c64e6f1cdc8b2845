"""Trained models kept loaded in one long-lived process, so that using a model feels immediate.

A reconstruct, an interpolation or a slider tick of a model that is already loaded pays neither a
process start nor a checkpoint read: they run in the *resident* process, which keeps models in a
``model_cache.ModelCache`` (least recently used out, under a byte budget; a model whose checkpoint
was rewritten by a training or a fit is loaded again). Training, fitting and the other heavy jobs
keep their own processes (``isolation.py``).

The isolation holds: the resident process has the job memory cap, exits with the server, and when
it dies (killed, out of memory, a crash in native code) only the requests in flight fail; the next
request starts it again. A job it runs is cancelled like any other: its handler polls the cancel
event, and after the grace period the process is killed (and restarted on the next request).

Requests are served one at a time (a lock): a live mesh and a queued extraction never compete for
the same cores or GPU.
"""

from __future__ import annotations

import logging
import multiprocessing.connection
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from compact_sdf.service.isolation import (
    ChildLimits,
    Outcome,
    _apply_limits,
    _context,
    _death,
    _die_with_server,
    failure,
    oom_kills,
    run_job,
)
from compact_sdf.service.paths import DataDir

log = logging.getLogger("compact_sdf.service")

# The job kinds that run in the resident process: they only read a trained model.
RESIDENT_KINDS = ("extract", "interpolate")


class ResidentDied(Exception):
    """The resident process ended while it served a request; the next request starts it again."""


def _child_main(
    conn: multiprocessing.connection.Connection,
    data_root: str,
    device: str,
    limits: ChildLimits,
    budget_bytes: int,
    cancel: Any,
    alive: multiprocessing.connection.Connection,
) -> None:
    """Serve ``(op, params)`` requests until the pipe closes; every reply is ``(ok, value, held)``,
    ``held`` the model cache's status after the request (what ``GET /resident`` shows)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_server(alive)
    from compact_sdf import model_cache

    _apply_limits(limits)
    model_cache.install(model_cache.ModelCache(budget_bytes, reserve_bytes=budget_bytes // 4))
    while True:
        try:
            op, params = conn.recv()
        except (EOFError, OSError):
            return
        try:
            ok, value = True, _OPS[op](params, data_root, device, cancel)
        except BaseException as exc:  # a request's failure is that request's alone
            ok, value = False, failure(exc, DataDir(data_root).root)
        cache = model_cache.active()
        conn.send((ok, value, cache.status() if cache is not None else {}))


def _mesh(params: dict[str, Any], data_root: str, device: str, cancel: Any) -> dict[str, Any]:
    """One mesh of a model: a shape's fused reconstruction or a blend of shapes (``live.mesh_for``)."""
    from compact_sdf.service.live import mesh_for

    return mesh_for(DataDir(data_root), device, params)


def _job(params: dict[str, Any], data_root: str, device: str, cancel: Any) -> Outcome:
    return run_job(params["job"], data_root, device, cancel, cancel)


def _evict(params: dict[str, Any], data_root: str, device: str, cancel: Any) -> int:
    from compact_sdf import model_cache

    cache = model_cache.active()
    return cache.evict(DataDir(data_root).model_dir(params["model_id"]), "model deleted") if cache else 0


_OPS: dict[str, Callable[[dict[str, Any], str, str, Any], Any]] = {
    "mesh": _mesh,
    "job": _job,
    "evict": _evict,
}


class Resident:
    """The server's handle on the resident process: starts it on demand, one request at a time."""

    def __init__(self, data: DataDir, device: str, limits: ChildLimits, budget_bytes: int) -> None:
        self.data, self.device, self.budget_bytes = data, device, budget_bytes
        # the job cap, plus the models it may hold on top of one job's work
        extra = None if limits.memory_bytes is None else limits.memory_bytes + budget_bytes
        self.limits = replace(limits, memory_bytes=extra)
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._alive: multiprocessing.connection.Connection | None = None
        self._cancel: Any = None
        self._oom_kills: int | None = None  # the kernel's count when the process started
        self.starts = 0
        self.held: dict[str, Any] = {}  # the model cache's status after the last request

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    @property
    def busy(self) -> bool:
        """A request or job is in flight (the next one waits for it)."""
        return self._lock.locked()

    def call(self, op: str, **params: Any) -> Any:
        """Run one request in the resident process; its own errors come back as ``(False, failure)``.

        Raises ``ResidentDied`` when the process ends before it answers.
        """
        with self._lock:
            conn = self._ensure()
            self._cancel.clear()
            conn.send((op, params))
            return self._reply(conn, lambda: False)

    def run_job(
        self, job: dict[str, Any], cancelled: Callable[[], bool], stopping: Callable[[], bool]
    ) -> Outcome:
        """Run a queued job's handler here; a cancel or a stop the handler does not honour in time
        kills the process (the next request starts a fresh one)."""
        with self._lock:
            try:
                conn = self._ensure()
                self._cancel.clear()
                conn.send(("job", {"job": job}))
                ok, value = self._reply(conn, lambda: cancelled() or stopping())
            except ResidentDied as exc:
                if cancelled() or stopping():
                    status = "cancelled" if cancelled() else "stopped"
                    return Outcome(
                        status, error={"code": "cancelled", "message": f"{status} (process ended)"}
                    )
                return Outcome("failed", error={"code": "crashed", "message": str(exc)})
            return value if ok else Outcome("failed", error=value)

    def stop(self) -> None:
        with self._lock:
            self._shutdown()

    def _ensure(self) -> multiprocessing.connection.Connection:
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            return self._conn
        self._shutdown()
        ctx = _context()
        self._cancel = ctx.Event()
        self._conn, child = ctx.Pipe(duplex=True)
        alive, self._alive = ctx.Pipe(duplex=False)
        args = (child, str(self.data.root), self.device, self.limits, self.budget_bytes, self._cancel, alive)
        self._proc = ctx.Process(target=_child_main, args=args, name="resident-models", daemon=True)
        self._oom_kills = oom_kills()
        self._proc.start()
        child.close()
        alive.close()
        self.starts += 1
        log.info("resident model process started (pid %s)", self._proc.pid)
        return self._conn

    def _reply(self, conn: multiprocessing.connection.Connection, stop_asked: Callable[[], bool]) -> Any:
        """Wait for the answer; pass a stop on and kill the process after the cancel grace."""
        deadline: float | None = None
        while True:
            if conn.poll(0.02):
                try:
                    ok, value, self.held = conn.recv()
                    return ok, value
                except (EOFError, OSError):
                    break
            if not self._proc.is_alive():
                break
            if deadline is None and stop_asked():
                self._cancel.set()
                deadline = time.monotonic() + self.limits.cancel_grace_s
            elif deadline is not None and time.monotonic() > deadline:
                log.warning("resident process did not stop in time; killing it")
                self._proc.kill()
                deadline = float("inf")
        self._proc.join(10.0)
        death = _death(self._proc.exitcode, self._oom_kills)["message"].replace("job's", "resident model")
        self._shutdown()
        raise ResidentDied(f"{death}; it starts again with the next request")

    def _shutdown(self) -> None:
        for end in (self._conn, self._alive):
            if end is not None:
                end.close()
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(10.0)
        self._proc = self._conn = self._alive = None
        self.held = {}
