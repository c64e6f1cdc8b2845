"""The HTTP API against a real server process on loopback, started through the add-on's launcher.

One server for the module (``--max-upload-mb 1 --max-faces 20000`` so the limits are cheap to hit);
the tests talk to it only through the stdlib client the add-on uses, or raw urllib for malformed calls.
"""

from __future__ import annotations

import http.client
import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from _service_helpers import FAST_TRAIN, addon_module, arrays, ply_bytes, sphere, start_backend, wait_for

pytestmark = pytest.mark.process  # starts processes (a server, the CLI, ranks)

client_mod = addon_module("client")
ApiError = client_mod.ApiError
MAX_UPLOAD_MB = 1
MAX_FACES = 20_000


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("service") / "data"
    server = start_backend(data, "--max-upload-mb", str(MAX_UPLOAD_MB), "--max-faces", str(MAX_FACES))
    yield server
    assert server.stop() == 0, server.last_log_text()


@pytest.fixture(scope="module")
def api(backend: Any) -> Any:
    return backend.client


@pytest.fixture(scope="module")
def trained(api: Any, shared_meshes: Path) -> dict[str, Any]:
    """Two uploaded meshes (a real PLY file and procedural arrays) and a tiny model trained on them."""
    knight = api.upload_mesh("knight", shared_meshes / "knight_small.ply")
    vertices, faces = arrays(sphere())
    ball = api.upload_arrays("ball", vertices, faces)
    job = api.create_job(
        {"kind": "train", "mesh_ids": [knight["id"], ball["id"]], "preset": "tiny"}, overrides=FAST_TRAIN
    )
    seen: list[dict[str, Any]] = []
    done = api.wait_job(job["id"], timeout=300, poll=0.05, on_progress=lambda j: seen.append(j))
    return {"job": done, "seen": seen, "knight": knight, "ball": ball, "model_id": job["model_id"]}


def raw(
    backend: Any, method: str, path: str, token: str | None = "auto", body: bytes | None = None
) -> tuple[int, Any]:
    """A request outside the client (for malformed paths and headers); returns (status, parsed JSON)."""
    headers = {}
    if token == "auto":
        token = backend.token
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(backend.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def error_of(call: Any) -> Any:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


# -- service --------------------------------------------------------------------------------------
def test_health_needs_no_token_and_reports_the_device(backend: Any) -> None:
    status, body = raw(backend, "GET", "/health", token=None)
    assert status == 200
    assert body["status"] == "ok" and body["device"] in ("cpu", "cuda")
    assert body["torch"].startswith("2.") and body["version"]
    if body["device"] == "cuda":
        assert body["gpu"] and body["gpu_memory_total"] > 0


@pytest.mark.parametrize("token", [None, "wrong-token-of-enough-length", ""])
@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/models", "/api/v1/meshes", "/openapi.json"])
def test_everything_but_health_needs_the_token(backend: Any, token: str | None, path: str) -> None:
    status, body = raw(backend, "GET", path, token=token)
    assert status == 401
    assert body["error"]["code"] == "unauthorized" and "token" in body["error"]["message"]


def test_openapi_spec_lists_the_resources(backend: Any) -> None:
    status, spec = raw(backend, "GET", "/openapi.json")
    assert status == 200
    for path in ("/health", "/api/v1/meshes", "/api/v1/models/{model_id}", "/api/v1/jobs/{job_id}/cancel"):
        assert path in spec["paths"]


# -- unknown ids and traversal ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs/0123456789abcdef0123456789abcdef",
        "/api/v1/jobs/nothex",
        "/api/v1/models/0123456789abcdef0123456789abcdef",
        "/api/v1/meshes/..%2F..%2Fjobs.sqlite",
        "/api/v1/models/%2e%2e",
        "/api/v1/jobs/0123456789abcdef0123456789abcdef/results",
        "/api/v1/models/0123456789abcdef0123456789abcdef/codes",
    ],
)
def test_unknown_ids_are_404_with_a_message(backend: Any, path: str) -> None:
    status, body = raw(backend, "GET", path)
    assert status == 404
    assert body["error"]["code"] == "not_found" and body["error"]["message"].startswith("no ")


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a\x00b", "..", "%2e%2e%2fx", "a/b", ".hidden"])
def test_traversal_names_are_refused_on_upload(api: Any, backend: Any, name: str) -> None:
    err = error_of(lambda: api.upload_mesh(name, ply_bytes(sphere(1))))
    assert err.status == 422 and "invalid mesh name" in err.message
    err = error_of(lambda: api.upload_arrays(name, *arrays(sphere(1))))
    assert err.status == 422
    stray = {p.name for p in Path(backend.data_dir).parent.iterdir()}
    assert stray == {"data"}, f"something was written beside the data directory: {stray}"


def test_traversal_in_result_file_names(api: Any, backend: Any, trained: dict[str, Any]) -> None:
    job = trained["job"]["id"]
    for name in ("..%2F..%2Fjobs.sqlite", "%2e%2e%2ftoken", "..", "token%00.ply", "%2Fetc%2Fpasswd"):
        status, body = raw(backend, "GET", f"/api/v1/jobs/{job}/results/{name}")
        assert status in (404, 422), (name, status)
        assert "error" in body, name
    err = error_of(lambda: api.download_result(job, "../../token"))
    assert err.status in (404, 422)


# -- bad uploads ------------------------------------------------------------------------------------
def test_non_mesh_upload_is_422(api: Any) -> None:
    err = error_of(lambda: api.upload_mesh("junk", b"this is not a mesh at all\n" * 10, fmt="ply"))
    assert err.status == 422 and "junk.ply" in err.message


def test_unknown_format_and_empty_body_are_422(api: Any) -> None:
    err = error_of(lambda: api.upload_mesh("x", b"solid", fmt="exe"))
    assert err.status == 422 and "unknown format" in err.message
    err = error_of(lambda: api.upload_mesh("x", b"", fmt="ply"))
    assert err.status == 422 and "empty" in err.message


def test_nan_vertices_are_422(api: Any) -> None:
    mesh = sphere(1)
    vertices, faces = arrays(mesh)
    vertices[3][1] = float("nan")
    err = error_of(lambda: api.upload_arrays("nanball", vertices, faces))
    assert err.status == 422 and "nan" in err.message.lower()
    broken = trimesh.Trimesh(np.array(vertices), np.array(faces), process=False)
    err = error_of(lambda: api.upload_mesh("nanply", ply_bytes(broken)))
    assert err.status == 422 and "nan" in err.message.lower()


def test_open_mesh_needs_allow_open(api: Any) -> None:
    mesh = sphere(2)
    open_mesh = trimesh.Trimesh(mesh.vertices, mesh.faces[:-6], process=False)
    err = error_of(lambda: api.upload_mesh("holey", ply_bytes(open_mesh)))
    assert err.status == 422 and err.code == "invalid_mesh"
    assert "open" in err.message.lower() or "watertight" in err.message.lower()
    accepted = api.upload_mesh("holey", ply_bytes(open_mesh), allow_open=True)
    assert accepted["allow_open"] is True and accepted["faces"] == len(open_mesh.faces)
    assert api.get_mesh(accepted["id"])["name"] == "holey"
    assert api.delete_mesh(accepted["id"]) == {"deleted": accepted["id"]}
    assert error_of(lambda: api.get_mesh(accepted["id"])).status == 404


def oversize(backend: Any, path: str, size: int, chunked: bool) -> tuple[int, Any]:
    """Send ``size`` bytes to ``path``: declared (Content-Length, body held back, so the server must answer
    from the header) or chunked (no length; the server must count as it reads)."""
    host, port = backend.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Authorization": f"Bearer {backend.token}", "Content-Type": "application/json"}
    try:
        if chunked:
            conn.request("POST", path, body=iter([b" " * size]), headers=headers, encode_chunked=True)
        else:
            conn.putrequest("POST", path)
            for key, value in {**headers, "Content-Length": str(size)}.items():
                conn.putheader(key, value)
            conn.endheaders()
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_too_large_uploads_are_413(api: Any, backend: Any) -> None:
    limit = MAX_UPLOAD_MB * 1024 * 1024
    err = error_of(lambda: api.upload_mesh("big", b"\0" * (limit + 1)))  # refused by the client (/health)
    assert err.status == 413 and err.code == "too_large" and "limit" in err.message
    err = error_of(lambda: api.upload_arrays("big", [[0.5, 0.5, 0.5]] * 80_000, [[0, 1, 2]]))
    assert err.status == 413 and err.code == "too_large"
    for path in ("/api/v1/meshes?name=big", "/api/v1/meshes/arrays"):  # and by the server
        for chunked in (False, True):
            status, body = oversize(backend, path, limit + 10, chunked)
            assert status == 413 and body["error"]["code"] == "too_large", (path, chunked, body)
    many = sphere(5)  # 20,480 faces
    assert len(many.faces) > MAX_FACES
    err = error_of(lambda: api.upload_mesh("many", ply_bytes(many)))
    assert err.status == 413 and err.code == "too_many_faces" and str(MAX_FACES) in err.message


def test_bad_job_requests(api: Any, trained: dict[str, Any]) -> None:
    model = trained["model_id"]
    err = error_of(lambda: api.create_job({"kind": "explode"}))
    assert err.status == 422 and err.code == "invalid_request"
    err = error_of(lambda: api.create_job({"kind": "extract", "model_id": model, "shape": "nope"}))
    assert err.status == 422 and "knight" in err.message
    err = error_of(lambda: api.create_job({"kind": "train", "mesh_ids": ["0" * 32]}))
    assert err.status == 404
    err = error_of(
        lambda: api.create_job(
            {"kind": "train", "mesh_ids": [trained["ball"]["id"]], "overrides": {"model.nope": 1}}
        )
    )
    assert err.status == 422 and "model.nope" in err.message
    err = error_of(lambda: api.create_job({"kind": "extract", "model_id": model, "shape": "../knight"}))
    assert err.status == 422
    shaped = {"kind": "extract", "model_id": model, "shape": "ball", "overrides": {"model.hidden": 8}}
    err = error_of(lambda: api.create_job(shaped))
    assert err.status == 422 and "only extract.* settings" in err.message
    more = {"kind": "train", "model_id": model, "overrides": {"model.hidden": 8}}
    err = error_of(lambda: api.create_job(more))
    assert err.status == 422 and "only train.* settings" in err.message


def test_a_new_model_of_many_meshes_is_scaled_to_their_number(api: Any, trained: dict[str, Any]) -> None:
    """More meshes than the preset's batch (tiny: 4) get the collection rule unless the job says no;
    the model's stored config (what its training and every later job use) shows which."""
    ids = [api.upload_arrays(f"pebble{i}", *arrays(sphere(radius=0.3 + 0.05 * i)))["id"] for i in range(5)]
    fast = {"train.steps": 2, "train.samples_per_shape": 200}
    body = {"kind": "train", "mesh_ids": ids, "preset": "tiny"}
    jobs = {
        "scaled": api.create_job(body, overrides=fast),
        "plain": api.create_job(body | {"collection": False}, overrides=fast),
    }
    configs = {}
    for name, job in jobs.items():
        assert api.wait_job(job["id"], timeout=300)["status"] == "succeeded"
        configs[name] = api.get_model(job["model_id"])["config"]
    assert (configs["scaled"]["model"]["grid_channels"], configs["scaled"]["train"]["shapes_per_batch"]) == (
        16,
        5,
    )
    assert (configs["plain"]["model"]["grid_channels"], configs["plain"]["train"]["shapes_per_batch"]) == (
        8,
        4,
    )
    assert configs["scaled"]["train"]["steps"] == 2  # overrides still apply after the scaling


# -- the main path ----------------------------------------------------------------------------------
def test_training_reports_rising_progress(trained: dict[str, Any]) -> None:
    job = trained["job"]
    assert job["status"] == "succeeded", job["error"]
    steps = [j["progress"]["step"] for j in trained["seen"] if j["progress"] and "step" in j["progress"]]
    assert len(set(steps)) >= 2, f"progress seen: {[j['progress'] for j in trained['seen']]}"
    assert steps == sorted(steps)
    assert job["progress"]["step"] == FAST_TRAIN["train.steps"] and job["progress"]["fraction"] == 1.0
    assert job["result"]["train"]["step"] == FAST_TRAIN["train.steps"]
    # the fusion band check of every run travels in the result: which shapes, and what to do
    train = job["result"]["train"]
    assert set(train["band_misses"]) <= {"knight", "ball"}
    assert bool(train["band_misses"]) == ("train longer" in train["band_advice"])
    training = [
        j["progress"] for j in trained["seen"] if j["progress"] and j["progress"].get("stage") == "train"
    ]
    assert all(p["loss_gen"] is not None for p in training)
    # the first step's time is not counted (compact_sdf/training/eta.py): an estimate from the second step on
    assert all(p["eta_s"] is not None for p in training if p["step"] > 1)


def test_models_list_describe(api: Any, trained: dict[str, Any]) -> None:
    listed = {m["id"]: m for m in api.list_models()}
    model = listed[trained["model_id"]]
    assert model["status"] == "ready" and model["checkpoint"] is True
    assert [s["name"] for s in model["shapes"]] == ["knight", "ball"]
    full = api.get_model(trained["model_id"])
    assert full["config"]["train"]["steps"] == FAST_TRAIN["train.steps"]
    assert full["config"]["preset"] == "tiny"
    assert set(full["summary"]["band_coverage"]) == {"knight", "ball"}  # measured at the end of training


def test_extract_and_download_fused_reconstruction(api: Any, trained: dict[str, Any], tmp_path: Path) -> None:
    closing = api.create_job(
        {"kind": "extract", "model_id": trained["model_id"], "shape": "ball", "resolution": 32,
         "overrides": {"extract.handles": "close"}}
    )  # fmt: skip
    closed = api.wait_job(closing["id"], timeout=120)
    assert closed["status"] == "succeeded", closed["error"]
    assert closed["params"]["overrides"] == {"extract.handles": "close"}
    job = api.create_job(
        {"kind": "extract", "model_id": trained["model_id"], "shape": "ball", "resolution": 32}
    )
    done = api.wait_job(job["id"], timeout=120)
    assert done["status"] == "succeeded", done["error"]
    files = api.list_results(job["id"])
    assert [f["name"] for f in files] == ["ball_fused.ply"] and files[0]["bytes"] > 0
    # what it lost against its source, in words (tests/test_extract_model.py shows the words)
    assert all(isinstance(x, str) for x in done["result"]["lost"])
    dest = tmp_path / "ball.ply"
    body = api.download_result(job["id"], "ball_fused.ply", dest)
    mesh = trimesh.load(io.BytesIO(body), file_type="ply")
    assert len(mesh.faces) > 0 and dest.read_bytes() == body


def test_interpolation_downloads(api: Any, trained: dict[str, Any]) -> None:
    body = {"kind": "interpolate", "model_id": trained["model_id"], "shapes": ["knight", "ball"], "steps": 3}
    job = api.create_job(body, resolution=24)
    done = api.wait_job(job["id"], timeout=120)
    assert done["status"] == "succeeded", done["error"]
    names = [f["name"] for f in api.list_results(job["id"])]
    assert names == ["interp_00.ply", "interp_01.ply", "interp_02.ply"]
    middle = trimesh.load(io.BytesIO(api.download_result(job["id"], names[1])), file_type="ply")
    assert len(middle.faces) > 0
    # what is wrong with a step, in words, only for steps that have something (test_blend_notes.py)
    lost = done["result"]["lost"]
    assert set(lost) <= set(names) and all(isinstance(n, str) for notes in lost.values() for n in notes)
    if middle.body_count > 1:
        assert lost.get(names[1]), "a middle step in pieces must say so"


def test_codes_export(api: Any, trained: dict[str, Any]) -> None:
    npz = np.load(io.BytesIO(api.export_codes(trained["model_id"], "npz")))
    assert len(npz.files) > 0
    as_json = json.loads(api.export_codes(trained["model_id"], "json"))
    assert "knight" in json.dumps(as_json) and "ball" in json.dumps(as_json)
    err = error_of(lambda: api.export_codes(trained["model_id"], "exe"))
    assert err.status == 422


def test_continue_training_resumes_the_model(api: Any, trained: dict[str, Any]) -> None:
    more = FAST_TRAIN["train.steps"] + 5
    job = api.create_job("train", model_id=trained["model_id"], overrides={"train.steps": more})
    assert job["model_id"] == trained["model_id"]
    done = api.wait_job(job["id"], timeout=300)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["resumed"] is True and done["result"]["train"]["step"] == more
    assert api.get_model(trained["model_id"])["config"]["train"]["steps"] == more


def test_cancel_and_50_concurrent_status_requests(api: Any, backend: Any, trained: dict[str, Any]) -> None:
    long_run = {**FAST_TRAIN, "train.steps": 100_000}
    running = api.create_job("train", mesh_ids=[trained["ball"]["id"]], preset="tiny", overrides=long_run)
    waiting = api.create_job("train", mesh_ids=[trained["ball"]["id"]], preset="tiny", overrides=long_run)
    wait_for(lambda: (api.get_job(running["id"])["progress"] or {}).get("step", 0) > 0, 120, what="training")

    def status(_: int) -> int:
        return int(
            client_mod.Client(backend.url, backend.token, timeout=60).get_job(running["id"])["progress"][
                "step"
            ]
        )

    with ThreadPoolExecutor(max_workers=50) as pool:
        steps = list(pool.map(status, range(50)))
    assert len(steps) == 50 and min(steps) > 0

    cancelled = api.cancel_job(waiting["id"])  # queued: cancelled at once
    assert cancelled["status"] == "cancelled"
    assert api.cancel_job(running["id"])["cancel_requested"] is True
    done = api.wait_job(running["id"], timeout=120)
    assert done["status"] == "cancelled" and "checkpoint" in done["error"]["message"]
    model = api.get_model(running["model_id"])
    assert model["status"] == "interrupted" and model["checkpoint"] is True
    err = error_of(lambda: api.cancel_job(running["id"]))
    assert err.status == 409 and "already cancelled" in err.message
    assert api.delete_model(running["model_id"]) == {"deleted": running["model_id"]}
    assert not (Path(backend.data_dir) / "models" / running["model_id"]).exists()


def test_fit_evaluate_and_codes_round_trip(api: Any, trained: dict[str, Any]) -> None:
    """The remaining job kinds on the trained model: add a shape (code only), score a reconstruction,
    and re-import the model's own exported codes."""
    model = trained["model_id"]
    small = api.upload_arrays("small_ball", *arrays(sphere(2, radius=0.3)))
    fit = api.create_job(
        {"kind": "fit", "model_id": model, "mesh_id": small["id"], "mode": "code", "iterations": 20}
    )
    done = api.wait_job(fit["id"], timeout=300)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["shape"] == "small_ball" and done["result"]["fit"]["mode"] == "code"
    assert "small_ball" in [s["name"] for s in api.get_model(model)["shapes"]]
    err = error_of(lambda: api.create_job({"kind": "fit", "model_id": model, "mesh_id": small["id"]}))
    assert err.status == 422 and "already has a shape" in err.message

    job = api.create_job(
        {"kind": "evaluate", "model_id": model, "shape": "ball", "resolution": 24, "samples": 2000}
    )
    done = api.wait_job(job["id"], timeout=300)
    assert done["status"] == "succeeded", done["error"]
    metrics = done["result"]["metrics"]
    assert metrics["samples"] == 2000 and metrics["shape"] == "ball" and metrics["mode"] == "fused"
    assert all(np.isfinite(v) for v in metrics.values() if isinstance(v, float))
    assert [f["name"] for f in api.list_results(job["id"])] == ["ball_fused.ply"]

    exported = api.export_codes(model, "npz")
    imported = api.import_codes(model, exported, "npz")
    assert [s["name"] for s in imported["shapes"]] == ["knight", "ball", "small_ball"]
    err = error_of(lambda: api.import_codes(model, b"not an npz", "npz"))
    assert err.status == 422


@pytest.mark.parametrize("fmt", ["glb", "obj", "stl"])
def test_other_upload_formats(api: Any, fmt: str) -> None:
    mesh = sphere(1)
    exported = mesh.export(file_type=fmt)
    body = exported.encode() if isinstance(exported, str) else bytes(exported)
    created = api.upload_mesh(f"ball_{fmt}", body, fmt=fmt)
    assert created["faces"] == len(mesh.faces) and created["vertices"] == len(mesh.vertices)
    api.delete_mesh(created["id"])
