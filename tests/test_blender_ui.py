"""The sidebar panels, the preferences and the status-bar entry draw in every state without errors, and
everything they show exists: each ``prop`` names a real property, each ``operator`` a registered one.

Headless Blender has no regions to draw into, so each ``draw`` gets a recording layout that checks
the names it is given and keeps the text it would show.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from blender_harness import build_extension, install_extension, install_with_local_backend, run_in_blender

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_extension(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory, zip_path: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ui")
    return run_in_blender(__file__, "scenario_draw", root / "user", zip_path=str(zip_path))["result"]


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory, zip_path: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("start")
    broken = root / "broken_python"
    broken.write_text('#!/bin/sh\necho "boom: no backend in this interpreter"\nexit 3\n')
    broken.chmod(0o755)
    return run_in_blender(
        __file__,
        "scenario_async_start",
        root / "user",
        timeout=120,
        zip_path=str(zip_path),
        data_dir=str(root / "data"),
        broken_python=str(broken),
    )["result"]


def test_idle_panel_offers_start_and_the_encode_settings(drawn: dict[str, Any]) -> None:
    idle = drawn["idle"]
    assert "Local backend: stopped" in idle["labels"]
    assert (
        "compact_sdf.backend_start" in idle["operators"]
        and "compact_sdf.backend_stop" not in idle["operators"]
    )
    assert {"preset", "steps", "allow_open", "resolution", "band", "interp_steps"} <= set(idle["props"])
    assert "Encode Selected (2)" in idle["texts"]  # two meshes selected, the empty not counted


def test_running_job_shows_progress_and_cancel(drawn: dict[str, Any]) -> None:
    busy = drawn["busy"]
    assert "Encode 2 objects" in busy["labels"] and ["train 12/40, 30 s left", 0.3] in busy["progress"]
    assert "compact_sdf.cancel_job" in busy["operators"]
    assert drawn["statusbar"] == [["Encode 2 objects: train 12/40, 30 s left", 0.3]]


def test_a_model_lists_its_shapes_with_their_objects_and_actions(drawn: dict[str, Any]) -> None:
    model = drawn["model"]
    assert "COMPACT_SDF_UL_shapes" in model["lists"] and "Shapes (2)" in model["labels"]
    assert model["shapes"] == [["Cube", "Empty"], ["Icosphere", ""]]
    assert {
        "compact_sdf.shapes_reconstruct",
        "compact_sdf.shapes_interpolate",
        "compact_sdf.shapes_evaluate",
        "compact_sdf.add_to_model",
    } <= set(model["operators"])
    assert "fit_iterations" in model["props"]


def test_live_object_shows_its_slider_and_refine(drawn: dict[str, Any]) -> None:
    live = drawn["live"]
    assert "live_factor" in live["props"] and "compact_sdf.live_refine" in live["operators"]


def test_preferences_show_setup_log_and_remote_fields(drawn: dict[str, Any]) -> None:
    local = drawn["prefs_local"]
    assert {"python_path", "data_dir", "device", "torch_variant", "torch_index", "extra_pip_args"} <= set(
        local["props"]
    )
    assert "compact_sdf.setup_backend" in local["operators"]
    assert any(label.startswith("Backend Python: ") for label in local["labels"])
    assert "Set-up failed at 'install torch (cpu)': the disk is full" in local["labels"]
    assert "ERROR: No space left on device" in local["labels"]  # the log is visible
    remote = drawn["prefs_remote"]
    assert {"remote_url", "remote_token"} <= set(remote["props"]) and "torch_variant" not in remote["props"]


SCENE_MAKERS = [
    "encode_selected",
    "add_to_model",
    "reconstruct",
    "interpolate",
    "live_create",
    "live_refine",
    "shapes_reconstruct",
    "shapes_interpolate",
]


def test_operators_that_add_objects_can_be_undone(drawn: dict[str, Any]) -> None:
    """Blender registered undo for each (most inherit it from a mixin, which Blender must read)."""
    assert drawn["undo"] == {name: ["REGISTER", "UNDO"] for name in SCENE_MAKERS}


def test_start_returns_at_once_and_the_panel_says_starting(started: dict[str, Any]) -> None:
    assert started["begin"][0] == "INFO" and started["begin_s"] < 2.0
    assert started["timer_registered"]
    panel = started["starting_panel"]
    assert "Local backend: starting…" in panel["labels"] and "Starting the backend…" in panel["labels"]
    assert "compact_sdf.backend_stop" in panel["operators"]
    assert "compact_sdf.backend_start" not in panel["operators"]


def test_second_press_while_starting_does_nothing(started: dict[str, Any]) -> None:
    assert started["second_press"] == ["CANCELLED"] and started["same_start"]


def test_timer_finishes_the_start_and_stop_ends_it(started: dict[str, Any]) -> None:
    assert started["timer_stopped"] and started["polls"] > 1  # it waited without blocking the caller
    assert started["ok"] and started["status"].startswith("Backend ") and started["health"] == "ok"
    assert "Local backend: running" in started["running_panel"]["labels"]
    assert started["stop"] == ["FINISHED"] and started["exit_code"] is not None


def test_failed_start_shows_the_error_and_the_backend_log(started: dict[str, Any]) -> None:
    failed = started["failed"]
    assert failed["status"] == "Start failed: the backend exited with code 3" and not failed["ok"]
    assert "boom: no backend in this interpreter" in failed["labels"]
    assert "Local backend: stopped" in failed["labels"]


def test_disabling_the_extension_while_starting_leaves_no_process(started: dict[str, Any]) -> None:
    assert started["disabled_while_starting"]["exit_code"] is not None


# --- runs inside Blender -------------------------------------------------------------------------


class RecordingLayout:
    """Stands in for ``UILayout``: validates names, records what would be shown."""

    def __init__(self, record: dict[str, list[Any]]) -> None:
        self.record = record

    def __getattr__(self, name: str) -> Any:
        if name in ("row", "column", "box", "split", "grid_flow", "column_flow"):
            return lambda *a, **k: RecordingLayout(self.record)
        raise AttributeError(f"layout.{name} is not recorded by the test")

    def label(self, text: str = "", **_: Any) -> None:
        self.record["labels"].append(text)

    def prop(self, data: Any, name: str, **kw: Any) -> None:
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property '{name}'"
        self.record["props"].append(name)
        if "text" in kw:
            self.record["texts"].append(kw["text"])

    def operator(self, idname: str, text: str = "", **_: Any) -> Any:
        import bpy

        module, _, op = idname.partition(".")
        getattr(getattr(bpy.ops, module), op).get_rna_type()  # raises KeyError when not registered
        self.record["operators"].append(idname)
        self.record["texts"].append(text)
        return type("OpProps", (), {})()

    def progress(self, factor: float = 0.0, type: str = "BAR", text: str = "") -> None:
        self.record["progress"].append([text, round(factor, 3)])

    def template_list(
        self, listtype: str, list_id: str, data: Any, prop: str, active_data: Any, active: str, **_: Any
    ) -> None:
        assert prop in data.bl_rna.properties and active in active_data.bl_rna.properties
        self.record["lists"].append(listtype)


def _draw_all(context: Any) -> dict[str, list[Any]]:
    import bpy

    record: dict[str, list[Any]] = {
        k: [] for k in ("labels", "props", "operators", "texts", "progress", "lists")
    }
    for name in (
        "COMPACT_SDF_PT_main",
        "COMPACT_SDF_PT_models",
        "COMPACT_SDF_PT_encode",
        "COMPACT_SDF_PT_results",
    ):
        panel = getattr(bpy.types, name)
        fake = type("FakePanel", (), {"layout": RecordingLayout(record)})()
        panel.draw(fake, context)
    return record


def _draw_prefs(context: Any, module: str) -> dict[str, list[Any]]:
    record: dict[str, list[Any]] = {
        k: [] for k in ("labels", "props", "operators", "texts", "progress", "lists")
    }
    prefs = context.preferences.addons[module].preferences
    type(prefs).draw(_Proxy(prefs, RecordingLayout(record)), context)
    return record


class _Proxy:
    """The preferences object with a recording layout (the real one's layout is read-only)."""

    def __init__(self, target: Any, layout: RecordingLayout) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "layout", layout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    @property
    def bl_rna(self) -> Any:
        return self._target.bl_rna


def scenario_draw(zip_path: str) -> dict[str, Any]:
    import bpy

    module = install_extension(zip_path)
    context = bpy.context
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.mesh.primitive_cube_add()
    bpy.ops.mesh.primitive_ico_sphere_add(location=(3, 0, 0))
    bpy.ops.object.empty_add()
    for obj in context.view_layer.objects:
        obj.select_set(True)
    out: dict[str, Any] = {"idle": _draw_all(context)}

    state = context.window_manager.compact_sdf
    jobs = sys.modules[module + ".addon.jobs"]
    job = {"id": "f" * 32, "status": "running", "progress": {"stage": "train", "fraction": 0.3, "step": 12}}
    job["progress"] |= {"total_steps": 40, "eta_s": 30.0}
    jobs.track(job, "Encode 2 objects", lambda j: "")
    out["busy"] = _draw_all(context)
    bar: list[Any] = []
    jobs.draw_status(type("Bar", (), {"layout": RecordingLayout({"progress": bar})})(), context)
    out["statusbar"] = bar
    jobs.forget_all()
    state.job_id = ""

    model = state.models.add()
    model.name, model.model_id, model.shapes = "demo", "m" * 32, "Cube, Icosphere"
    context.active_object["compact_sdf_model"], context.active_object["compact_sdf_code"] = "m" * 32, "Cube"
    sys.modules[module + ".addon.backend_state"].select_model(context, "m" * 32)
    out["model"] = _draw_all(context) | {"shapes": [[s.name, s.source] for s in state.shapes]}

    live = context.active_object
    live["compact_sdf_role"] = "live"
    out["live"] = _draw_all(context)

    backend_setup = sys.modules[module + ".addon.backend_setup"]
    setup_env = sys.modules[module + ".addon.setup_env"]
    failed = setup_env.SetupJob(
        setup_env.SetupPlan(Path(sys.executable), Path("/nonexistent/venv"), Path("/b"))
    )
    failed.log.extend(["$ pip install torch", "ERROR: No space left on device"])
    failed.state, failed.message = "failed", "Set-up failed at 'install torch (cpu)': the disk is full"
    backend_setup._setup = failed
    out["prefs_local"] = _draw_prefs(context, module)
    backend_setup._setup = None
    context.preferences.addons[module].preferences.backend_mode = "REMOTE"
    out["prefs_remote"] = _draw_prefs(context, module)
    out["undo"] = {name: sorted(getattr(bpy.ops.compact_sdf, name).bl_options) for name in SCENE_MAKERS}
    return out


def scenario_async_start(zip_path: str, data_dir: str, broken_python: str) -> dict[str, Any]:
    """The interactive start path: begin it as the UI does, draw the panel, press Start again, then call
    the timer function by hand (background Blender never fires timers) until it finishes the start."""
    import time

    import bpy

    module, prefs = install_with_local_backend(zip_path, data_dir)
    context = bpy.context
    state = context.window_manager.compact_sdf
    backend_state = sys.modules[module + ".addon.backend_state"]
    connection = sys.modules[module + ".addon.connection"]

    def drive() -> int:
        polls, next_call = 0, 0.0
        deadline = time.monotonic() + 60
        while next_call is not None and time.monotonic() < deadline:
            time.sleep(next_call)
            next_call = backend_state.watch_start()
            polls += 1
        if bpy.app.timers.is_registered(backend_state.watch_start):
            bpy.app.timers.unregister(backend_state.watch_start)
        return polls if next_call is None else -1

    t0 = time.monotonic()
    out: dict[str, Any] = {"begin": list(backend_state.start_backend(context, background=False))}
    out["begin_s"] = time.monotonic() - t0
    out["timer_registered"] = bpy.app.timers.is_registered(backend_state.watch_start)
    backend = connection.starting().backend
    out["starting_panel"] = _draw_all(context)
    out["second_press"] = sorted(bpy.ops.compact_sdf.backend_start())
    out["same_start"] = connection.starting().backend is backend
    out["polls"] = drive()
    out["timer_stopped"] = out["polls"] > 0
    out["ok"], out["status"] = state.backend_ok, state.backend_status
    out["health"] = connection.client().health().get("status")
    out["running_panel"] = _draw_all(context)
    out["stop"] = sorted(bpy.ops.compact_sdf.backend_stop())
    out["exit_code"] = backend.proc.poll()

    prefs.python_path = broken_python
    backend_state.start_backend(context, background=False)
    drive()
    out["failed"] = {"status": state.backend_status, "ok": state.backend_ok} | _draw_all(context)

    prefs.python_path = sys.executable
    backend_state.start_backend(context, background=False)
    backend = connection.starting().backend
    bpy.ops.preferences.addon_disable(module=module)
    out["disabled_while_starting"] = {"exit_code": backend.proc.poll()}
    return out
