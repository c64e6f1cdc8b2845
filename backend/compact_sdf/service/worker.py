"""The job worker: threads that take queued jobs in FIFO order and run them one at a time each.

One worker by default (one GPU). Cancel sets a flag that training polls through ``should_stop``;
a graceful shutdown asks the running job to stop the same way and puts it back in the queue, so
the next start resumes it from its last checkpoint. After a crash (SIGKILL, power loss) ``recover``
does the same for jobs left ``running``, up to ``MAX_ATTEMPTS`` starts per job.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any

from compact_sdf.device import resolve_device
from compact_sdf.errors import Cancelled, CompactSDFError
from compact_sdf.service.jobs import HANDLERS, JobContext
from compact_sdf.service.paths import DataDir
from compact_sdf.service.store import Store

log = logging.getLogger("compact_sdf.service")

MAX_ATTEMPTS = 3
PROGRESS_INTERVAL_S = 0.25


class Worker:
    def __init__(self, store: Store, data: DataDir, threads: int = 1, device: str = "auto") -> None:
        self.store = store
        self.data = data
        self.device = str(resolve_device(device))
        self._threads = [
            threading.Thread(target=self._loop, name=f"job-worker-{i}", daemon=True) for i in range(threads)
        ]
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._cancel: set[str] = set()
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------
    def recover(self) -> None:
        """Requeue jobs a dead server left ``running`` (training resumes from its checkpoint)."""
        for job in self.store.running_jobs():
            if job["cancel_requested"]:
                self._finish(job["id"], "cancelled", error={"code": "cancelled", "message": "cancelled"})
            elif job["attempts"] >= MAX_ATTEMPTS:
                message = f"the server stopped {job['attempts']} times while this job ran; giving up"
                self._finish(job["id"], "failed", error={"code": "interrupted", "message": message})
                if job["kind"] == "train" and job["model_id"]:
                    ckpt = (self.data.model_dir(job["model_id"]) / "checkpoint.pt").is_file()
                    self.store.update_model(job["model_id"], status="interrupted" if ckpt else "failed")
            else:
                log.warning(
                    "job %s (%s) was running when the server stopped; requeued", job["id"], job["kind"]
                )
                note = {"stage": "requeued after a server restart", "fraction": 0.0}
                self.store.update_job(job["id"], status="queued", progress=note)

    def start(self) -> None:
        self.recover()
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the running jobs to stop at their next step and wait for them to save."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            if t.is_alive():
                t.join(max(deadline - time.monotonic(), 0.0))

    def notify(self) -> None:
        """A job was queued: wake an idle worker now instead of at its next poll."""
        self._wake.set()

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self._cancel.add(job_id)

    # -- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            job = self.store.claim_next()
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self._run(job)

    def _run(self, job: dict[str, Any]) -> None:
        job_id = job["id"]
        log.info("job %s (%s) started (attempt %d)", job_id, job["kind"], job["attempts"])
        last_write = [0.0]
        latest: dict[str, Any] = {}

        def report(progress: dict[str, Any]) -> None:
            latest.clear()
            latest.update(progress)
            now = time.monotonic()
            if now - last_write[0] >= PROGRESS_INTERVAL_S or progress.get("fraction", 0.0) >= 1.0:
                last_write[0] = now
                self.store.update_job(job_id, progress=progress)

        def should_stop() -> bool:
            with self._lock:
                if job_id in self._cancel:
                    return True
            return self._stopping.is_set()

        ctx = JobContext(job, self.data, self.store, report, should_stop, self.device)
        try:
            result = HANDLERS[job["kind"]](ctx)
        except Cancelled as exc:
            self._stopped(job, str(exc))
        except CompactSDFError as exc:
            log.info("job %s failed: %s", job_id, exc)
            self._finish(job_id, "failed", error={"code": exc.code, "message": str(exc)})
        except FloatingPointError as exc:
            self._finish(job_id, "failed", error={"code": "diverged", "message": str(exc)})
        except Exception as exc:
            log.error("job %s crashed:\n%s", job_id, traceback.format_exc())
            message = f"internal error: {type(exc).__name__}: {exc}"
            self._finish(job_id, "failed", error={"code": "internal", "message": message})
        else:
            if self._cancelled(job_id):
                self._stopped(job, "cancelled")
            else:
                done = {**latest, "stage": "done", "fraction": 1.0}
                self._finish(job_id, "succeeded", result=result, progress=done)
                log.info("job %s succeeded", job_id)
        finally:
            with self._lock:
                self._cancel.discard(job_id)

    def _cancelled(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._cancel

    def _stopped(self, job: dict[str, Any], message: str) -> None:
        if self._cancelled(job["id"]):
            self._finish(job["id"], "cancelled", error={"code": "cancelled", "message": message})
            log.info("job %s cancelled", job["id"])
        else:  # server shutdown: back to the queue; this start does not count as an attempt
            self.store.update_job(
                job["id"],
                status="queued",
                attempts=max(job["attempts"] - 1, 0),
                progress={"stage": "paused by server shutdown", "fraction": 0.0},
            )
            log.info("job %s paused for shutdown; it resumes on the next start", job["id"])

    def _finish(self, job_id: str, status: str, **values: Any) -> None:
        self.store.update_job(job_id, status=status, finished=time.time(), **values)
