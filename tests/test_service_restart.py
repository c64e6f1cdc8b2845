"""Crash safety: SIGKILL the server during training, restart it on the same data, the job resumes from
its last checkpoint; a clean stop then pauses it and the next start resumes it again; nothing finished
is lost.

The long job has far more steps than any machine runs during the test, so no phase races the job's
end (a fast machine once finished a 120-step job before the clean stop arrived). Finishing after a
resume is the training loop's own path, covered by tests/test_train_checkpoint.py.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from _service_helpers import FAST_TRAIN, arrays, sphere, start_backend, wait_for
from compact_sdf.service.store import Store

pytestmark = pytest.mark.process  # starts processes (a server, the CLI, ranks)


def checkpoint_step(model_dir: Path) -> int:
    payload = torch.load(model_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    return int(payload["step"])


def progress(api: Any, job_id: str) -> dict[str, Any]:
    return api.get_job(job_id)["progress"] or {}


@pytest.mark.slow
def test_sigkill_resume_clean_stop_resume(tmp_path: Path) -> None:
    data = tmp_path / "data"
    backend = start_backend(data)
    try:
        api = backend.client
        ball = api.upload_arrays("ball", *arrays(sphere()))
        first = api.create_job("train", mesh_ids=[ball["id"]], preset="tiny", overrides=FAST_TRAIN)
        finished = api.wait_job(first["id"], timeout=300)
        assert finished["status"] == "succeeded", finished["error"]
        extract = api.create_job("extract", model_id=first["model_id"], shape="ball", resolution=16)
        assert api.wait_job(extract["id"], timeout=120)["status"] == "succeeded"
        kept = api.download_result(extract["id"], "ball_fused.ply")

        steps = 100_000  # never reached: the test cancels the job in the end
        long_job = api.create_job(
            "train", mesh_ids=[ball["id"]], preset="tiny", overrides={**FAST_TRAIN, "train.steps": steps}
        )
        model_dir = data / "models" / long_job["model_id"]
        wait_for(lambda: progress(api, long_job["id"]).get("step", 0) >= 25, 300, what="two checkpoints")
        os.kill(backend.pid, signal.SIGKILL)
        backend.proc.wait(30)
    finally:
        backend.stop()
    assert backend.proc.returncode == -signal.SIGKILL
    saved = checkpoint_step(model_dir)
    assert saved >= 20 and saved % FAST_TRAIN["train.checkpoint_every"] == 0
    assert Store(data / "jobs.sqlite").get_job(long_job["id"])["status"] == "running"  # as the crash left it

    backend = start_backend(data)
    try:
        api = backend.client
        resumed = wait_for(lambda: progress(api, long_job["id"]).get("resumed"), 300, what="the resumed job")
        assert resumed is True
        first_step = progress(api, long_job["id"])["step"]
        assert first_step > saved, "training restarted from scratch instead of the checkpoint"
        wait_for(lambda: progress(api, long_job["id"]).get("step", 0) >= first_step + 3, 300, what="training")
    finally:
        assert backend.stop() == 0, backend.last_log_text()  # a clean stop pauses the job
    row = Store(data / "jobs.sqlite").get_job(long_job["id"])
    assert row["status"] == "queued" and "shutdown" in row["progress"]["stage"]
    assert checkpoint_step(model_dir) >= first_step + 3  # saved on the stop request, between checkpoints

    backend = start_backend(data)
    try:
        api = backend.client
        again = wait_for(
            lambda: progress(api, long_job["id"]).get("step", 0) > first_step + 3, 300, what="resume"
        )
        assert again and api.get_job(long_job["id"])["attempts"] == 2  # the clean stop is no attempt
        assert api.get_job(first["id"])["status"] == "succeeded"  # finished work survives the crash
        assert api.download_result(extract["id"], "ball_fused.ply") == kept
        api.cancel_job(long_job["id"])
        done = api.wait_job(long_job["id"], timeout=120)
        assert done["status"] == "cancelled", done
    finally:
        assert backend.stop() == 0, backend.last_log_text()
    assert checkpoint_step(model_dir) > first_step + 3  # the cancel kept the latest weights
