"""The extension zip: built and validated by Blender's own tool, installable and enable-able in headless
Blender, and register/unregister leave nothing behind."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

import pytest
from blender_harness import EXTENSION_MODULE, REPO, install_extension, run_in_blender

pytestmark = pytest.mark.blender

_spec = importlib.util.spec_from_file_location("csdf_package", REPO / "scripts" / "package.py")
assert _spec is not None and _spec.loader is not None
package = importlib.util.module_from_spec(_spec)
sys.modules["csdf_package"] = package
_spec.loader.exec_module(package)


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package.build(tmp_path_factory.mktemp("dist"))


def test_zip_is_named_from_the_manifest_and_holds_addon_and_backend(extension_zip: Path) -> None:
    assert extension_zip.name == f"compact_sdf-{package.manifest_version()}.zip"
    with zipfile.ZipFile(extension_zip) as zf:
        names = set(zf.namelist())
    assert {"blender_manifest.toml", "__init__.py", "addon/__init__.py", "addon/client.py"} <= names
    assert "backend/pyproject.toml" in names and "backend/compact_sdf/service/app.py" in names
    assert {n.split("/")[0] for n in names} == package.ALLOWED_TOP  # no tests, bench, research, docs
    assert not [n for n in names if n.endswith(".pyc")]


def test_validation_rejects_a_broken_manifest(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("def register(): pass\ndef unregister(): pass\n")
    manifest = (REPO / "blender_manifest.toml").read_text()
    (tmp_path / "blender_manifest.toml").write_text(
        manifest.replace('id = "compact_sdf"', 'id = "compact sdf"')
    )
    with pytest.raises(package.PackageError, match="validate failed"):
        package.validate(tmp_path)


def test_installs_enables_and_reregisters_cleanly(extension_zip: Path, tmp_path: Path) -> None:
    run = run_in_blender(
        __file__, "scenario_install_and_cycle", tmp_path / "user", zip_path=str(extension_zip)
    )
    result = run["result"]
    assert result["operators"] == sorted(
        [
            "add_to_model",
            "backend_check",
            "backend_start",
            "backend_stop",
            "cancel_job",
            "encode_selected",
            "export_codes",
            "import_codes",
            "interpolate",
            "live_create",
            "live_refine",
            "reconstruct",
            "setup_backend",
            "setup_cancel",
            "shapes_evaluate",
            "shapes_interpolate",
            "shapes_reconstruct",
        ]
    )
    assert result["installed_at"].startswith(str(tmp_path / "user"))
    assert result["panels"] == [
        "COMPACT_SDF_PT_encode",
        "COMPACT_SDF_PT_main",
        "COMPACT_SDF_PT_models",
        "COMPACT_SDF_PT_results",
    ]
    for cycle in result["cycles"]:
        assert cycle == dict.fromkeys(("operators", "panels", "statusbar"), 0) | dict.fromkeys(
            ("scene_prop", "object_prop", "wm_prop", "timers", "prefs"), False
        )
    assert result["final_operators"] == len(result["operators"])
    assert result["statusbar_enabled"] == result["final_statusbar"] == 1


def scenario_install_and_cycle(zip_path: str) -> dict:
    import addon_utils  # noqa: F401  (Blender's add-on machinery, loaded as the UI would)
    import bpy

    module = install_extension(zip_path)
    addon = sys.modules[module]
    state = {
        "operators": sorted(dir(bpy.ops.compact_sdf)),
        "installed_at": str(Path(addon.__file__).parent),
        "panels": sorted(n for n in dir(bpy.types) if n.startswith("COMPACT_SDF_PT_")),
        "cycles": [],
    }
    jobs = sys.modules[module + ".addon.jobs"]
    state["statusbar_enabled"] = _statusbar_entries(jobs)
    for _ in range(2):
        bpy.ops.preferences.addon_disable(module=module)
        state["cycles"].append(
            {
                "operators": len(dir(bpy.ops.compact_sdf)),
                "panels": len([n for n in dir(bpy.types) if n.startswith("COMPACT_SDF")]),
                "scene_prop": hasattr(bpy.types.Scene, "compact_sdf"),
                "object_prop": hasattr(bpy.types.Object, "compact_sdf"),
                "wm_prop": hasattr(bpy.types.WindowManager, "compact_sdf"),
                "statusbar": _statusbar_entries(jobs),
                "timers": bpy.app.timers.is_registered(jobs._tick),
                "prefs": module in bpy.context.preferences.addons,
            }
        )
        bpy.ops.preferences.addon_enable(module=module)
        jobs = sys.modules[module + ".addon.jobs"]
    state["final_operators"] = len(dir(bpy.ops.compact_sdf))
    state["final_statusbar"] = _statusbar_entries(jobs)
    assert bpy.context.preferences.addons[module].preferences.backend_mode == "LOCAL"
    assert module == EXTENSION_MODULE
    return state


def _statusbar_entries(jobs: object) -> int:
    import bpy

    funcs = getattr(bpy.types.STATUSBAR_HT_header.draw, "_draw_funcs", [])
    return sum(1 for f in funcs if f is jobs.draw_status)  # type: ignore[attr-defined]
