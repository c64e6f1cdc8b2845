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
from blender_harness import REPO, install_extension, run_in_blender

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "scripts"))
    import package

    root = tmp_path_factory.mktemp("ui")
    zip_path = package.build(root / "dist")
    return run_in_blender(__file__, "scenario_draw", root / "user", zip_path=str(zip_path))["result"]


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
    jobs._show(job, "Encode 2 objects")
    out["busy"] = _draw_all(context)
    bar: list[Any] = []
    jobs.draw_status(type("Bar", (), {"layout": RecordingLayout({"progress": bar})})(), context)
    out["statusbar"] = bar
    state.job_id = ""

    live = context.active_object
    live["compact_sdf_role"] = "live"
    out["live"] = _draw_all(context)

    backend_ops = sys.modules[module + ".addon.operators_backend"]
    setup_env = sys.modules[module + ".addon.setup_env"]
    failed = setup_env.SetupJob(
        setup_env.SetupPlan(Path(sys.executable), Path("/nonexistent/venv"), Path("/b"))
    )
    failed.log.extend(["$ pip install torch", "ERROR: No space left on device"])
    failed.state, failed.message = "failed", "Set-up failed at 'install torch (cpu)': the disk is full"
    backend_ops._setup = failed
    out["prefs_local"] = _draw_prefs(context, module)
    backend_ops._setup = None
    context.preferences.addons[module].preferences.backend_mode = "REMOTE"
    out["prefs_remote"] = _draw_prefs(context, module)
    return out
