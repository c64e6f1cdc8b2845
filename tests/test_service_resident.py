"""Models stay loaded in the resident process (real server on loopback): one request answers one mesh,
a warm model is not read again, it is read again after training rewrote its checkpoint, the least
recently used model is evicted under the memory budget, and killing the process fails only the
request in flight."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _service_helpers import FAST_TRAIN, addon_module, arrays, sphere, start_backend, trained_ball, wait_for

pytestmark = [pytest.mark.process, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server whose resident budget holds one tiny model (about 0.3 MB of parameters), not two."""
    backend = start_backend(tmp_path_factory.mktemp("resident") / "data", "--resident-mb", "0.45")
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def two_models(served: Any) -> tuple[str, str]:
    api = served.client
    first = trained_ball(api)[1]
    box = api.upload_arrays("box", *arrays(sphere(radius=0.35)))
    job = api.create_job("train", mesh_ids=[box["id"]], preset="tiny", overrides=FAST_TRAIN)
    assert api.wait_job(job["id"], timeout=300)["status"] == "succeeded"
    return first, job["model_id"]


def test_a_mesh_request_answers_the_mesh_and_reuses_the_loaded_model(served: Any, two_models: Any) -> None:
    api, model = served.client, two_models[0]
    first = api.mesh(model, ["ball"], resolution=32)
    again = api.mesh(model, ["ball"], resolution=32)
    assert first.loaded and not again.loaded
    verts = np.frombuffer(again.vertices.tobytes(), np.float32).reshape(-1, 3)
    faces = np.frombuffer(again.faces.tobytes(), np.int32).reshape(-1, 3)
    assert len(faces) > 100 and faces.min() >= 0 and faces.max() < len(verts)
    assert np.isfinite(verts).all() and np.abs(verts).max() < 1.0  # the ball (radius 0.5), own frame
    assert (first.vertices, first.faces) == (again.vertices, again.faces)
    # a queued extract job runs in the same process: still one read of this model
    loads = api.resident()["loads"]
    job = api.create_job("extract", model_id=model, shape="ball", resolution=32, format="ply")
    assert api.wait_job(job["id"], timeout=120)["status"] == "succeeded"
    assert api.resident()["loads"] == loads


def test_a_blend_needs_one_weight_per_shape(served: Any, two_models: Any) -> None:
    client = addon_module("client")
    with pytest.raises(client.ApiError) as err:
        served.client.mesh(two_models[0], ["ball", "ball"], [1.0], resolution=16)
    assert err.value.status == 422
    with pytest.raises(client.ApiError) as err:
        served.client.mesh(two_models[0], ["nope"], resolution=16)
    assert err.value.status == 422 and "no shape 'nope'" in err.value.message


def test_the_least_recently_used_model_is_evicted_under_the_budget(served: Any, two_models: Any) -> None:
    api = served.client
    a, b = two_models
    api.mesh(a, ["ball"], resolution=16)
    assert not api.mesh(a, ["ball"], resolution=16).loaded
    assert api.mesh(b, ["box"], resolution=16).loaded
    status = api.resident()
    assert [m["model_dir"].rsplit("/", 1)[-1] for m in status["models"]] == [b]
    assert status["bytes"] <= status["budget_bytes"]
    assert any(e["why"] == "memory budget" and e["model_dir"].endswith(a) for e in status["evictions"])
    assert api.mesh(a, ["ball"], resolution=16).loaded  # read again


def test_a_retrained_model_is_read_again(served: Any, two_models: Any) -> None:
    api, model = served.client, two_models[0]
    api.mesh(model, ["ball"], resolution=16)
    assert not api.mesh(model, ["ball"], resolution=16).loaded
    job = api.create_job("train", model_id=model, overrides={"train.steps": 40})
    assert api.wait_job(job["id"], timeout=300)["status"] == "succeeded"
    assert api.mesh(model, ["ball"], resolution=16).loaded
    assert any(e["why"] == "checkpoint changed" for e in api.resident()["evictions"])


def test_killing_the_resident_process_fails_only_the_request_in_flight(served: Any, two_models: Any) -> None:
    api, model = served.client, two_models[0]
    client = addon_module("client")
    api.mesh(model, ["ball"], resolution=16)
    pid = api.resident()["pid"]
    os.kill(pid, signal.SIGSTOP)  # frozen: the next request is certainly in flight when it dies
    outcome: dict[str, Any] = {}

    def request() -> None:
        try:
            api.mesh(model, ["ball"], resolution=16)
            outcome["ok"] = True
        except client.ApiError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=request)
    thread.start()
    try:
        wait_for(lambda: api.resident()["busy"], 60, what="the request to reach the resident process")
        assert api.health()["status"] == "ok"  # the API answers while the request waits
        assert thread.is_alive()
    finally:
        os.kill(pid, signal.SIGKILL)
    thread.join(60)
    assert outcome["error"].status == 503 and outcome["error"].code == "resident_restarting"
    assert "SIGKILL" in outcome["error"].message
    again = api.mesh(model, ["ball"], resolution=16)  # the next request starts it again
    assert again.loaded and api.resident()["pid"] not in (None, pid)
    job = api.create_job("extract", model_id=model, shape="ball", resolution=16, format="ply")
    assert api.wait_job(job["id"], timeout=120)["status"] == "succeeded"


def test_a_job_in_the_resident_process_fails_alone_when_it_is_killed(served: Any, two_models: Any) -> None:
    api, model = served.client, two_models[0]
    api.mesh(model, ["ball"], resolution=16)
    pid = api.resident()["pid"]
    os.kill(pid, signal.SIGSTOP)
    job = api.create_job("extract", model_id=model, shape="ball", resolution=16, format="ply")
    wait_for(lambda: api.get_job(job["id"])["status"] == "running", 60, what="the job to start")
    os.kill(pid, signal.SIGKILL)
    done = api.wait_job(job["id"], timeout=60)
    assert done["status"] == "failed" and done["error"]["code"] == "crashed"
    assert "resident model process" in done["error"]["message"]
    follow = api.create_job("extract", model_id=model, shape="ball", resolution=16, format="ply")
    assert api.wait_job(follow["id"], timeout=120)["status"] == "succeeded"


def test_deleting_a_model_evicts_it(served: Any, tmp_path: Path) -> None:
    api = served.client
    model = trained_ball(api)[1]
    api.mesh(model, ["ball"], resolution=16)
    api.delete_model(model)
    status = api.resident()
    assert not any(m["model_dir"].endswith(model) for m in status["models"])
    assert any(e["why"] == "model deleted" for e in status["evictions"])
