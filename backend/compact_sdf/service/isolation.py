"""Run one job in a child process, so that its failure is that job's alone.

A job that runs out of memory (the kernel's OOM killer, or the child's own address-space limit), that
segfaults in a native library, or that does not answer a cancel in time ends only its child: the API,
the queue and the other jobs go on, and the job is marked failed or cancelled with a reason.

The child reports progress straight to the SQLite store (WAL, one connection per write) and polls two
events the parent sets: ``cancel`` (the user asked) and ``stop`` (the server is shutting down, the job
goes back to the queue). Code that polls ``should_stop`` (training steps, extraction levels, metric
chunks) stops on its own and saves; code that does not is killed after a grace period.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from compact_sdf.procfs import proc_bytes

log = logging.getLogger("compact_sdf.service")

PROGRESS_INTERVAL_S = 0.25
# The forkserver imports these once; every job's child is then a cheap fork of a single-threaded
# process (no re-import of torch per job, and no fork of the server's threads).
_PRELOAD = ["torch", "compact_sdf.service.jobs"]
# Kinds whose network evaluation and metric stages also stop on a cancel (progress.check_stop);
# training and fitting stop through should_stop at a step, after saving.
POLLED_KINDS = frozenset({"extract", "interpolate", "evaluate"})


@dataclass(frozen=True)
class ChildLimits:
    """What a job's process may use. ``memory_bytes`` is extra data memory (heap and anonymous
    mappings, what tensors and arrays live in) above what the freshly forked child already holds,
    enforced with RLIMIT_DATA (library code and reserved-but-unused address space do not count, unlike
    RLIMIT_AS); None means no limit."""

    memory_bytes: int | None = None
    torch_threads: int = 0  # 0: torch's default
    cancel_grace_s: float = 3.0  # a cancel ends the job within this, killing the child if it must
    stop_grace_s: float = 25.0  # a server stop gives training this long to save its checkpoint


@dataclass
class Outcome:
    """How a job's child ended. ``stopped`` means paused by a server shutdown (requeue it)."""

    status: Literal["succeeded", "failed", "cancelled", "stopped"]
    result: dict[str, Any] | None = None
    error: dict[str, str] = field(default_factory=dict)


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _data_bytes() -> int:
    """This process's data segment (VmData), the base the memory limit is added to."""
    return proc_bytes("/proc/self/status", "VmData") or 0


def _die_with_server(alive: multiprocessing.connection.Connection) -> None:
    """Exit when the server dies (SIGKILL, OOM), so a restarted server never finds this job still
    running beside the copy it requeues. ``alive`` is a pipe whose only writer is the server: its
    end of file means the server is gone (the forkserver, this process's parent, outlives it)."""

    def watch() -> None:
        try:
            alive.recv()
        except (EOFError, OSError):
            os._exit(1)

    threading.Thread(target=watch, name="server-watch", daemon=True).start()


def _apply_limits(limits: ChildLimits) -> None:
    if limits.memory_bytes is not None:
        import resource

        cap = _data_bytes() + int(limits.memory_bytes)
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    if limits.torch_threads > 0:
        import torch

        torch.set_num_threads(limits.torch_threads)


def _is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text


def failure(exc: BaseException, data_root: Path | None = None) -> dict[str, str]:
    """A job's error in words and a code (``disk_full``, ``out_of_memory``, the error's own, ...);
    paths under the data directory read ``DATA/...``."""
    from compact_sdf.errors import CompactSDFError
    from compact_sdf.service.disk import disk_full_message, is_disk_full
    from compact_sdf.service.paths import hide_root

    if is_disk_full(exc, data_root):
        return {"code": "disk_full", "message": disk_full_message("the job's output")}
    if isinstance(exc, CompactSDFError):
        code, message = exc.code, str(exc)
    elif isinstance(exc, FloatingPointError):
        code, message = "diverged", str(exc)
    elif _is_out_of_memory(exc):
        code = "out_of_memory"
        message = "the job ran out of memory; try a smaller resolution, preset or sample count"
    else:
        log.error("job crashed:\n%s", traceback.format_exc())
        code, message = "internal", f"internal error: {type(exc).__name__}: {exc}"
    return {"code": code, "message": message if data_root is None else hide_root(message, data_root)}


def _child_main(
    conn: multiprocessing.connection.Connection,
    job: dict[str, Any],
    data_root: str,
    device: str,
    limits: ChildLimits,
    cancel: Any,
    stop: Any,
    alive: multiprocessing.connection.Connection,
) -> None:
    """The job's process: run its handler, send one ``Outcome`` back, exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C on the server reaches the parent only
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_server(alive)
    try:
        _apply_limits(limits)
    except BaseException as exc:
        outcome = Outcome("failed", error=failure(exc))
    else:
        outcome = run_job(job, data_root, device, cancel, stop)
    try:
        conn.send(outcome)
    finally:
        conn.close()


def run_job(job: dict[str, Any], data_root: str, device: str, cancel: Any, stop: Any) -> Outcome:
    """Run one job's handler in this process (a job's own child, or the resident process) and say how
    it ended; progress goes to the store, ``cancel`` / ``stop`` are the parent's events."""
    from compact_sdf.errors import Cancelled
    from compact_sdf.progress import stop_when
    from compact_sdf.service.jobs import HANDLERS, JobContext
    from compact_sdf.service.paths import DataDir
    from compact_sdf.service.store import Store

    data = DataDir(data_root)
    store = Store(data.db_path, owner=False)
    last = [0.0]
    latest: dict[str, Any] = {}
    # a resumed job's bar does not go back while it catches up (worker.held): it starts where it was
    floor = float((job.get("progress") or {}).get("fraction") or 0.0)

    def report(progress: dict[str, Any]) -> None:
        progress = {**progress, "fraction": max(float(progress.get("fraction", 0.0)), floor)}
        latest.clear()
        latest.update(progress)
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL_S or progress.get("fraction", 0.0) >= 1.0:
            last[0] = now
            store.update_job(job["id"], progress=progress)

    def should_stop() -> bool:
        return bool(cancel.is_set() or stop.is_set())

    if job["kind"] in POLLED_KINDS:
        stop_when(should_stop)
    try:
        result = HANDLERS[job["kind"]](JobContext(job, data, store, report, should_stop, device))
    except Cancelled as exc:
        return Outcome(
            "cancelled" if cancel.is_set() else "stopped", error={"code": "cancelled", "message": str(exc)}
        )
    except BaseException as exc:  # the handler's last word: anything else is this job's failure
        return Outcome("failed", error=failure(exc, data.root))
    if cancel.is_set():
        return Outcome("cancelled", error={"code": "cancelled", "message": "cancelled"})
    return Outcome("succeeded", result={"result": result, "progress": dict(latest)})


def oom_kills() -> int | None:
    """The kernel's count of out-of-memory kills since boot (``/proc/vmstat``), None without it."""
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def _death(exitcode: int | None, oom_before: int | None = None) -> dict[str, str]:
    """Words for a child that died without an outcome. A SIGKILL is the kernel's out-of-memory killer
    only when its kill count rose while the job ran; otherwise something outside killed it."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        if -exitcode != signal.SIGKILL:
            return {"code": "crashed", "message": f"the job's process was killed by {name}"}
        after = oom_kills()
        if oom_before is not None and after is not None and after == oom_before:
            message = "the job's process was killed by SIGKILL from outside the server (not for memory)"
            return {"code": "killed", "message": message}
        message = "the job's process was killed by SIGKILL (the machine ran out of memory)"
        return {"code": "out_of_memory", "message": message}
    return {"code": "crashed", "message": f"the job's process exited with status {exitcode}"}


class JobProcess:
    """One job's child process, watched by the worker thread that started it."""

    def __init__(self, job: dict[str, Any], data_root: Path, device: str, limits: ChildLimits) -> None:
        ctx = _context()
        self.limits = limits
        self._cancel = ctx.Event()
        self._stop = ctx.Event()
        self._recv, send = ctx.Pipe(duplex=False)
        alive, self._alive = ctx.Pipe(duplex=False)
        args = (send, job, str(data_root), device, limits, self._cancel, self._stop, alive)
        self._proc = ctx.Process(target=_child_main, args=args, name=f"job-{job['id'][:8]}", daemon=True)
        self._oom_before = oom_kills()
        self._proc.start()
        send.close()
        alive.close()

    def wait(self, cancelled: Any, stopping: Any) -> Outcome:
        """Block until the child ends; pass on cancel/stop requests; kill it after their grace period."""
        try:
            return self._watch(cancelled, stopping)
        finally:
            self._alive.close()
            self._recv.close()

    def _watch(self, cancelled: Any, stopping: Any) -> Outcome:
        deadline: float | None = None
        killed_for: Literal["cancelled", "stopped"] | None = None
        while True:
            if self._recv.poll(0.1):
                try:
                    outcome: Outcome = self._recv.recv()
                except (EOFError, OSError):
                    break
                self._proc.join(10.0)
                return outcome
            if not self._proc.is_alive():
                break
            if deadline is None and (cancelled() or stopping()):
                event, grace = (
                    (self._cancel, self.limits.cancel_grace_s)
                    if cancelled()
                    else (self._stop, self.limits.stop_grace_s)
                )
                event.set()
                deadline = time.monotonic() + grace
            elif deadline is not None and time.monotonic() > deadline and killed_for is None:
                killed_for = "cancelled" if self._cancel.is_set() else "stopped"
                log.warning("job process %s did not stop in time; killing it", self._proc.name)
                self._proc.kill()
        self._proc.join(10.0)
        if killed_for is not None:
            return Outcome(
                killed_for, error={"code": "cancelled", "message": f"{killed_for} (process ended)"}
            )
        return Outcome("failed", error=_death(self._proc.exitcode, self._oom_before))
