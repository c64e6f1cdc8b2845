"""What the panel says is true (real headless Blender, the built extension, a scripted backend).

The backend's answers come from a stand-in client, so each state is reached exactly and nothing
depends on how fast the machine trains: the backend line follows the job counts from the job
timer, Add to Model sends the default mode and reports a shape still poorly held as a warning,
a live blend that comes back broken says so under its slider and as a warning (and stops saying
so once it is whole again), and Import Codes errors name the file the user chose in plain words.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from blender_harness import build_extension, install_extension, run_in_blender

pytestmark = pytest.mark.blender

MODEL = "a" * 32
BROKEN = "2 separate pieces where the shapes it blends have at most 1"


@pytest.fixture(scope="module")
def told(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("truth")
    zip_path = build_extension(root / "dist")
    run = run_in_blender(__file__, "scenario_truth", root / "user", zip_path=str(zip_path), root=str(root))
    return run["result"] | {"output": run["output"]}


def test_the_backend_line_follows_the_jobs_from_the_timer(told: dict[str, Any]) -> None:
    lines = told["lines"]
    assert lines["running"].endswith("1 running / 0 queued")
    assert lines["ended"].endswith("0 running / 0 queued")  # refreshed when the job ended, no click


def test_add_to_model_sends_the_default_mode_and_warns_when_still_poorly_held(told: dict[str, Any]) -> None:
    add = told["add"]
    assert add["body"]["kind"] == "fit" and add["body"]["mode"] == "auto"
    assert add["result"] == ["FINISHED"] and add["link"] == [MODEL, "Fertility"]
    lines = told["output"].splitlines()
    warned = [line for line in lines if line.startswith("Warning: Added Fertility")]  # the operator's report
    assert warned and not any(line.startswith("Info: Added Fertility") for line in lines)
    assert "fine-tuned with it for 600 steps" in warned[0] and "into a new model" in warned[0]
    assert add["panel"] == ["WARNING", add["panel"][1]] and "Fertility 61.0%" in add["panel"][1]


def test_a_broken_live_blend_is_a_warning_under_its_slider_until_it_is_whole(told: dict[str, Any]) -> None:
    live = told["live"]
    assert live["note"] == BROKEN and live["panel"] == ["WARNING", f"'Live a-b' at these weights: {BROKEN}"]
    assert live["refine"] == ["FINISHED"]
    assert any(
        line.startswith(f"Warning: 'Live a-b' at these weights: {BROKEN}")
        for line in told["output"].splitlines()
    )
    assert live["whole_note"] == "" and live["whole_line"] == "" and live["faces"] == 4


def test_import_codes_errors_name_the_chosen_file_in_words(told: dict[str, Any]) -> None:
    err = told["import"]
    assert err["result"] == ["CANCELLED"] and err["sent_as"] == "my shapes.npz"
    lines = [line for line in told["output"].splitlines() if "Import of 'my shapes.npz' failed" in line]
    assert lines and "is not a codes file" in lines[0] and "[bad_input" not in lines[0]
    assert "HTTP" not in lines[0] and "Error:" not in lines[0].split("failed:")[1]


# --- runs inside Blender -------------------------------------------------------------------------


class ScriptedClient:
    """The backend's answers, set by the scenario; records what the add-on sent."""

    def __init__(self) -> None:
        self.lost = ""  # what the next live mesh answer says is wrong with it
        self.jobs: dict[str, dict[str, Any]] = {}
        self.counts = (0, 0)
        self.sent: list[dict[str, Any]] = []
        self.filenames: list[str | None] = []

    def health(self, timeout: float | None = None) -> dict[str, Any]:
        running, queued = self.counts
        return {"status": "ok", "version": "t", "device": "cpu", "torch": "t", "running_jobs": running,
                "queued_jobs": queued}  # fmt: skip

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.jobs[job_id]

    def create_job(self, kind: str, **params: Any) -> dict[str, Any]:
        self.sent.append({"kind": kind, **params})
        return self.jobs["fit"]

    def mesh(self, model_id: str, shapes: list[str], weights: list[float], **_: Any) -> Any:
        from array import array

        verts = array("f", [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1])
        faces = array("i", [0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3])
        return self.live_mesh(verts, faces, 0.01, False, self.lost)

    live_mesh: Any = None

    def upload_mesh(self, name: str, **_: Any) -> dict[str, Any]:
        return {"id": "m" * 32, "name": name}

    def list_models(self) -> list[dict[str, Any]]:
        shapes = [{"name": "spot"}] + [{"name": b["name"]} for b in self.sent if b["kind"] == "fit"]
        return [{"id": MODEL, "name": "demo", "status": "ready", "preset": "preview", "shapes": shapes}]

    def get_model(self, model_id: str) -> dict[str, Any]:
        return self.list_models()[0]

    def import_codes(self, model_id: str, body: bytes, fmt: str, filename: str | None = None) -> Any:
        from compact_sdf.codes_io import read_codes
        from compact_sdf.errors import InputError

        self.filenames.append(filename)
        copy = self.root / f"upload.{fmt}"  # the server reads a copy under another name
        copy.write_bytes(body)
        try:
            read_codes(copy, filename)
        except InputError as exc:
            raise self.api_error(422, "bad_input", str(exc)) from None
        raise AssertionError("the scenario sends a broken file")

    api_error: Any = None
    root = Path()


def scenario_truth(zip_path: str, root: str) -> dict[str, Any]:
    import bpy

    module = install_extension(zip_path)
    bpy.ops.wm.read_homefile(use_empty=True)
    addon = module + ".addon."
    connection, jobs = sys.modules[addon + "connection"], sys.modules[addon + "jobs"]
    fake = ScriptedClient()
    fake.api_error, fake.root = sys.modules[addon + "client"].ApiError, Path(root)
    fake.live_mesh = sys.modules[addon + "client"].LiveMesh
    connection.client = lambda context=None: fake
    connection.problem = lambda context=None: None
    state = bpy.context.window_manager.compact_sdf
    out: dict[str, Any] = {"lines": {}}

    fake.jobs["t"] = {"id": "t", "kind": "train", "status": "running", "progress": {"stage": "train"}}
    fake.counts = (1, 0)
    jobs.track(fake.jobs["t"], "Encode 3 objects", lambda j: "done")
    jobs._tick()
    out["lines"]["running"] = state.backend_status
    fake.jobs["t"] = fake.jobs["t"] | {"status": "succeeded"}
    fake.counts = (0, 0)
    jobs._tick()
    out["lines"]["ended"] = state.backend_status

    out["add"] = _add(bpy, fake, sys.modules[addon + "backend_state"])
    # the same job followed by the UI's timer: the panel's line under the jobs is a warning
    link = sys.modules[addon + "results"].link_encoded
    jobs.track(fake.jobs["fit"], "Add Fertility to demo", lambda j: link(j, {"Fertility": "Fertility"}))
    jobs._tick()
    out["add"]["panel"] = [state.job_level, state.job_message]
    out["live"] = _live(bpy, fake, state)
    out["import"] = _import(bpy, fake, Path(root))
    return out


def _live(bpy: Any, fake: ScriptedClient, state: Any) -> dict[str, Any]:
    """A live object whose blend comes back in two pieces, then whole."""
    bpy.ops.mesh.primitive_cube_add()
    obj = bpy.context.active_object
    obj.name = "Live a-b"
    obj["compact_sdf_model"], obj["compact_sdf_role"], obj["compact_sdf_sources"] = MODEL, "live", "a,b"
    fake.lost = BROKEN
    obj.compact_sdf.live_factor = 0.3  # the update callback asks for the mesh (at once in background)
    out = {"note": obj.get("compact_sdf_note"), "panel": [state.job_level, state.job_message]}
    out["refine"] = sorted(bpy.ops.compact_sdf.live_refine(resolution=64))
    fake.lost = ""
    obj.compact_sdf.live_factor = 0.4
    out["whole_note"], out["faces"] = obj.get("compact_sdf_note"), len(obj.data.polygons)
    out["whole_line"] = state.job_message
    return out


def _add(bpy: Any, fake: ScriptedClient, backend_state: Any) -> dict[str, Any]:
    """Add Selected to Model on a shape the fine-tune still does not hold: a warning, not a success."""
    fit = {"mode": "full", "iterations": 600, "code_misses": {"Fertility": 0.35},
           "band_misses": {"Fertility": 0.61}}  # fmt: skip
    result = {"model_id": MODEL, "shape": "Fertility", "fit": fit}
    fake.jobs["fit"] = {"id": "fit", "kind": "fit", "status": "succeeded", "model_id": MODEL}
    fake.jobs["fit"]["result"] = result
    backend_state.refresh_models(bpy.context)
    bpy.ops.mesh.primitive_torus_add()
    obj = bpy.context.active_object
    obj.name = "Fertility"
    obj.select_set(True)
    outcome = bpy.ops.compact_sdf.add_to_model()
    link = [obj.get("compact_sdf_model"), obj.get("compact_sdf_code")]
    return {"result": sorted(outcome), "body": fake.sent[-1], "link": link}


def _import(bpy: Any, fake: ScriptedClient, root: Path) -> dict[str, Any]:
    """Import Codes on a file that is not an export."""
    chosen = root / "my shapes.npz"
    chosen.write_bytes(b"PK\x03\x04 not an archive")
    try:
        outcome = sorted(bpy.ops.compact_sdf.import_codes(filepath=str(chosen)))
    except RuntimeError as exc:  # an operator's error report raises in background Blender
        outcome = ["CANCELLED", str(exc)]
    return {"result": outcome[:1], "sent_as": fake.filenames[-1]}
