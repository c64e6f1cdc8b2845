"""The job worker: threads that take queued jobs in FIFO order and run them one at a time each.

One worker by default (one GPU). Cancel sets a flag that training polls through ``should_stop``;
a graceful shutdown asks the running job to stop the same way and puts it back in the queue, so
the next start resumes it from its last checkpoint. After a crash (SIGKILL, power loss) ``recover``
does the same for jobs left ``running``, up to ``MAX_ATTEMPTS`` starts per job.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

from compact_sdf.device import resolve_device
from compact_sdf.service.isolation import ChildLimits, JobProcess, Outcome, failure
from compact_sdf.service.paths import DataDir
from compact_sdf.service.resident import RESIDENT_KINDS, Resident
from compact_sdf.service.store import Store

log = logging.getLogger("compact_sdf.service")

MAX_ATTEMPTS = 3
RETRY_S = 2.0  # how often a worker retries the database after a write failed (a full disk)
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
        resident_bytes: int = 2 << 30,
    ) -> None:
        self.store = store
        self.data = data
        self.limits = limits or ChildLimits()
        self.device = str(resolve_device(device))
        self.resident = Resident(data, self.device, self.limits, resident_bytes)
        self._threads = [
            threading.Thread(target=self._loop, name=f"job-worker-{i}", daemon=True) for i in range(threads)
        ]
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._cancel: set[str] = set()
        self._lock = threading.Lock()
        self._ended: dict[str, dict[str, Any]] = {}  # how jobs ended, until the database has it

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
        self.resident.stop()

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
        """Take jobs until the server stops; an error of the worker's own (the database or the disk
        failing under it) costs at most the job in hand, never the thread."""
        while not self._stopping.is_set():
            try:
                job = self.store.claim_next()
            except (sqlite3.Error, OSError) as exc:  # e.g. a full disk: wait for space, then go on
                log.warning("cannot take the next job (%s); retrying in %.0f s", exc, RETRY_S)
                self._stopping.wait(RETRY_S)
                continue
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
            if job["kind"] in RESIDENT_KINDS:  # reads a trained model: where models stay loaded
                outcome = self.resident.run_job(job, lambda: self._cancelled(job_id), self._stopping.is_set)
            else:
                child = JobProcess(job, self.data.root, self.device, self.limits)
                outcome = child.wait(lambda: self._cancelled(job_id), self._stopping.is_set)
        except Exception as exc:  # the process could not start or be watched: this job's failure
            log.exception("job %s could not run", job_id)
            outcome = Outcome("failed", error=failure(exc, self.data.root))
        finally:
            with self._lock:
                self._cancel.discard(job_id)
        self._persist(job, outcome)

    def _persist(self, job: dict[str, Any], outcome: Outcome) -> None:
        """Record how the job ended, whatever happens: a database or disk error (a full disk) is
        retried until it lands, so the job's end is recorded once space is back (meanwhile this thread
        takes no new job); any other error marks the job failed. A server stop gives up (the next
        start requeues what is left ``running``)."""
        while True:
            try:
                self._record(job, outcome)
                return
            except (sqlite3.Error, OSError) as exc:
                if self._stopping.is_set():
                    log.error(
                        "could not record how job %s ended before the server stopped: %s", job["id"], exc
                    )
                    return
                log.warning(
                    "cannot record how job %s ended (%s); retrying in %.0f s", job["id"], exc, RETRY_S
                )
                self._stopping.wait(RETRY_S)
            except Exception as exc:
                log.exception("recording how job %s ended failed", job["id"])
                if outcome.error.get("code") == "internal":
                    return
                message = f"internal error while recording the job's end: {type(exc).__name__}"
                outcome = Outcome("failed", error={"code": "internal", "message": message})

    def _record(self, job: dict[str, Any], outcome: Outcome) -> None:
        job_id = job["id"]
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
        ended = {"status": status, "finished": time.time(), **values}
        with self._lock:
            ended = self._ended.setdefault(job_id, ended)  # a retry keeps the first time
        self.store.update_job(job_id, **ended)
        with self._lock:
            self._ended.pop(job_id, None)

    def as_known(self, job: dict[str, Any]) -> dict[str, Any]:
        """The job row with an end the database could not take yet (a full disk) laid over it, so
        status reads say ``failed`` (and why) instead of ``running`` while no process runs it."""
        with self._lock:
            ended = self._ended.get(job["id"])
        return job if ended is None else {**job, **ended}
