"""Bad input gets a 4xx with a one-line reason from a real server on loopback (issue 14's list).

Every request here was once accepted and failed later as ``internal``, or answered 500. They are now
refused when they arrive: settings and fields against the one bounds table (``bounds.py``), meshes by
validation, codes files by ``codes.read_codes`` and the name rule.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _service_helpers import addon_module, arrays, sphere, start_backend, trained_ball
from compact_sdf.errors import CheckpointError, CompactSDFError, InputError

pytestmark = pytest.mark.process  # starts processes (a server, the CLI, ranks)

ApiError = addon_module("client").ApiError


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    backend = start_backend(tmp_path_factory.mktemp("bad_input") / "data")
    yield backend
    assert backend.stop() == 0, backend.last_log_text()


@pytest.fixture(scope="module")
def trained(server: Any) -> dict[str, str]:
    mesh_id, model_id = trained_ball(server.client)
    return {"mesh_id": mesh_id, "model_id": model_id}


def refused(call: Any, *args: Any, **kwargs: Any) -> Any:
    """The ApiError of a refused call; its status is a 4xx and its message one line."""
    with pytest.raises(ApiError) as info:
        call(*args, **kwargs)
    err = info.value
    assert 400 <= err.status < 500, err
    assert "\n" not in err.message and err.message, err.message
    return err


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"model.hidden": 40000}, "model.hidden"),
        ({"train.steps": "1e400"}, "train.steps"),
        ({"train.steps": 0}, "train.steps"),
        ({"train.steps": -5}, "train.steps"),
        ({"model.grid_res": 0}, "model.grid_res"),
        ({"model.layers": 0}, "model.layers"),
        ({"model.hidden": 0}, "model.hidden"),
        ({"model.code_dim": -1}, "model.code_dim"),
        ({"train.loss": "nope"}, "train.loss"),
        ({"train.precision": "fp64"}, "train.precision"),
        ({"train.device": "../x"}, "train.device"),
        ({"train.samples_per_shape": 0}, "train.samples_per_shape"),
        ({"sampling.band_width": -1}, "sampling.band_width"),
        ({"train.nope": 1}, "train.nope"),
    ],
)
def test_bad_settings_are_refused_at_submission(server: Any, overrides: dict, says: str) -> None:
    api = server.client
    mesh = api.upload_arrays("settings_ball", *arrays(sphere(1)))
    err = refused(api.create_job, "train", mesh_ids=[mesh["id"]], preset="tiny", overrides=overrides)
    assert err.status == 422 and says in err.message


def test_out_of_bound_fields_are_refused(server: Any, trained: dict[str, str]) -> None:
    api, model = server.client, trained["model_id"]
    for body in (
        {"kind": "extract", "model_id": model, "shape": "ball", "resolution": 4096},
        {"kind": "extract", "model_id": model, "shape": "ball", "band": 99},
        {"kind": "evaluate", "model_id": model, "shape": "ball", "samples": 20_000_000},
        {"kind": "interpolate", "model_id": model, "shapes": ["ball", "ball"], "steps": 1000},
        {"kind": "fit", "model_id": model, "mesh_id": trained["mesh_id"], "name": "x", "iterations": 0},
    ):
        assert refused(api.create_job, body).status == 422


def test_the_openapi_description_states_the_bounds(server: Any) -> None:
    spec = server.client.request("GET", "/openapi.json")
    schemas = spec["components"]["schemas"]
    hidden = schemas["ConfigOverrides"]["properties"]["model.hidden"]
    assert json.dumps(hidden).count("4096") == 1 and "additionalProperties" in json.dumps(
        schemas["ConfigOverrides"]
    )
    assert schemas["ExtractJob"]["properties"]["resolution"]["maximum"] == 1024
    assert set(json.dumps(schemas["ConfigOverrides"]["properties"]["train.loss"]).split('"')) >= {"mse", "l1"}


def _ascii_ply(faces: str) -> bytes:
    head = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
    head += "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
    return (head + "0 0 0\n1 0 0\n0 1 0\n" + faces + "\n").encode()


def test_bad_meshes_are_refused(server: Any) -> None:
    api = server.client
    assert "face indices" in refused(api.upload_mesh, "past", _ascii_ply("3 0 1 7"), "ply").message
    assert "face indices" in refused(api.upload_mesh, "negative", _ascii_ply("3 0 1 -1"), "ply").message
    huge = [[0, 0, 0], [1e308, 0, 0], [0, 1e308, 0], [0, 0, 1e308]]
    tetra = [[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]]
    assert "coordinates" in refused(api.upload_arrays, "huge", huge, tetra).message
    obj = "".join(f"v {x} {y} {z}\n" for x, y, z in huge) + "f 1 2 3\nf 1 3 4\nf 1 4 2\nf 2 4 3\n"
    assert "coordinates" in refused(api.upload_mesh, "huge_obj", obj.encode(), "obj").message


def _npz(names: list[str], codes: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, codes=codes, names=np.array(names))
    return buf.getvalue()


def test_bad_codes_files_are_refused(server: Any, trained: dict[str, str]) -> None:
    api, model = server.client, trained["model_id"]
    good = api.export_codes(model, "json")
    export = json.loads(good)
    dim = len(export["codes"][0])
    assert refused(api.import_codes, model, b"[]", "json").status == 422
    npz = api.export_codes(model, "npz")
    cut = refused(api.import_codes, model, npz[: len(npz) // 2], "npz", filename="/home/u/my shapes.npz")
    assert cut.status == 422 and cut.message.startswith("'my shapes.npz' is not a codes file")
    assert "Error" not in cut.message and "codes.npz" not in cut.message  # not the server's copy
    for name in ("../../x", "a/b", "n" * 300):
        bad = {
            **export,
            "names": [name],
            "codes": export["codes"][:1],
            "shapes": {name: export["shapes"]["ball"]},
        }
        assert "shape name" in refused(api.import_codes, model, json.dumps(bad).encode(), "json").message
    bare = _npz(["ball"], np.zeros((1, dim), np.float32))  # no model hash: would overwrite "ball"
    assert "--force" in refused(api.import_codes, model, bare, "npz").message


def test_a_mesh_a_model_was_trained_on_cannot_be_deleted(server: Any, trained: dict[str, str]) -> None:
    err = refused(server.client.delete_mesh, trained["mesh_id"])
    assert err.status == 409 and trained["model_id"] in err.message


def test_codes_export_leaves_no_temporary_files(server: Any, trained: dict[str, str]) -> None:
    tmp = Path(server.data_dir) / "tmp"
    before = sorted(p.name for p in tmp.iterdir())
    for fmt in ("npz", "json"):
        server.client.export_codes(trained["model_id"], fmt)
    assert sorted(p.name for p in tmp.iterdir()) == before


@pytest.mark.slow
def test_full_fit_works_for_a_model_trained_through_the_service(server: Any, trained: dict[str, str]) -> None:
    """The service records each shape's mesh, so a full fit can rebuild the old shapes' samples."""
    api = server.client
    new = api.upload_arrays("small_ball", *arrays(sphere(2, radius=0.3)))
    job = api.create_job("fit", model_id=trained["model_id"], mesh_id=new["id"], mode="full", extra_steps=5)
    done = api.wait_job(job["id"], timeout=300)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["fit"]["mode"] == "full"


def test_method_not_allowed_says_which_are(server: Any) -> None:
    """405 carries ``Allow`` (RFC 9110), as the fuzzer expects."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{server.url}/health", method="DELETE")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=30)
    assert info.value.code == 405 and "GET" in info.value.headers.get("Allow", "")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (CheckpointError("damaged"), 409),
        (InputError("bad", code="bad_name"), 422),
        (CompactSDFError("other"), 422),
    ],
)
def test_user_errors_map_to_their_status(error: CompactSDFError, status: int) -> None:
    """A bad checkpoint conflicts with stored state; any other user error is unprocessable input."""
    from compact_sdf.service.app import _install_error_handlers
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    _install_error_handlers(app)

    @app.get("/fail")
    def fail() -> None:
        raise error

    response = TestClient(app).get("/fail")
    assert response.status_code == status
    assert response.json() == {"error": {"code": error.code, "message": str(error)}}
