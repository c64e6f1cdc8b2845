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
from typing import Any

from compact_sdf.device import resolve_device
from compact_sdf.service.isolation import ChildLimits, JobProcess
from compact_sdf.service.paths import DataDir
from compact_sdf.service.store import Store

log = logging.getLogger("compact_sdf.service")

MAX_ATTEMPTS = 3
# A requeued job's progress line: its bar keeps the fraction it had reached (training resumes from its
# checkpoint, so the work is not lost), and the line is replaced as soon as the job runs again.
PAUSED = "paused by a server shutdown; continues when the server runs again"
REQUEUED = "requeued after a server restart; continues from its last checkpoint"
RESUMING = "resuming after a server restart"


def resuming(job: dict[str, Any]) -> bool:
    """Whether a claimed job was paused or requeued by a server stop (its line says so until replaced)."""
    return (job.get("progress") or {}).get("stage") in (PAUSED, REQUEUED)


def held(job: dict[str, Any], stage: str) -> dict[str, Any]:
    """A progress line with ``stage`` and the fraction ``job`` had reached."""
    return {"stage": stage, "fraction": float((job.get("progress") or {}).get("fraction") or 0.0)}


class Worker:
    def __init__(
        self,
        store: Store,
        data: DataDir,
        threads: int = 1,
        device: str = "auto",
        limits: ChildLimits | None = None,
    ) -> None:
        self.store = store
        self.data = data
        self.limits = limits or ChildLimits()
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
                self._settle_model(job)
            else:
                log.warning(
                    "job %s (%s) was running when the server stopped; requeued", job["id"], job["kind"]
                )
                self.store.update_job(job["id"], status="queued", progress=held(job, REQUEUED))

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

    def forget(self, job_id: str) -> None:
        """Drop a cancel flag set for a job that turned out not to be running."""
        with self._lock:
            self._cancel.discard(job_id)

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
        """Run the job in its own process (isolation.py) and record how it ended."""
        job_id = job["id"]
        log.info("job %s (%s) started (attempt %d)", job_id, job["kind"], job["attempts"])
        if resuming(job):  # it runs again: its line no longer says paused
            job = {**job, "progress": held(job, RESUMING)}
            self.store.update_job(job_id, progress=job["progress"])
        try:
            child = JobProcess(job, self.data.root, self.device, self.limits)
            outcome = child.wait(lambda: self._cancelled(job_id), self._stopping.is_set)
        finally:
            with self._lock:
                self._cancel.discard(job_id)
        if outcome.status == "succeeded":
            assert outcome.result is not None
            done = {**outcome.result["progress"], "stage": "done", "fraction": 1.0}
            self._finish(job_id, "succeeded", result=outcome.result["result"], progress=done)
            log.info("job %s succeeded", job_id)
        elif outcome.status == "stopped":
            self._requeue(job)
        else:
            self._finish(job_id, outcome.status, error=outcome.error)
            self._settle_model(job)
            log.info("job %s %s: %s", job_id, outcome.status, outcome.error.get("message", ""))

    def _cancelled(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._cancel

    def _requeue(self, job: dict[str, Any]) -> None:
        """Server shutdown: back to the queue; this start does not count as an attempt."""
        now = self.store.get_job(job["id"]) or job  # the progress the job had reached
        self.store.update_job(
            job["id"], status="queued", attempts=max(job["attempts"] - 1, 0), progress=held(now, PAUSED)
        )
        log.info("job %s paused for shutdown; it resumes on the next start", job["id"])

    def _settle_model(self, job: dict[str, Any]) -> None:
        """A training job that ended badly leaves its model resumable (checkpoint) or failed."""
        if job["kind"] != "train" or not job["model_id"]:
            return
        model = self.store.get_model(job["model_id"])
        if model is None or model["status"] != "training":
            return
        ckpt = (self.data.model_dir(job["model_id"]) / "checkpoint.pt").is_file()
        self.store.update_model(job["model_id"], status="interrupted" if ckpt else "failed")

    def _finish(self, job_id: str, status: str, **values: Any) -> None:
        self.store.update_job(job_id, status=status, finished=time.time(), **values)
