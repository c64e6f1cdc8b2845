"""Run a function inside a fresh headless Blender (the real ``bpy`` module) in its own process.

bpy keeps global state (registered classes, preferences, the user's extension folder) and bundles
native libraries of its own, so every scenario gets a clean interpreter whose Blender user folder
(``BLENDER_USER_RESOURCES``) is a temporary directory. The scenario's return value comes back as JSON;
an assertion inside it fails the test with Blender's output attached.

Used by tests: ``run_in_blender(__file__, "scenario_name", user_dir, **kwargs)``, or ``run_story`` for a
scenario that installs the built extension zip.
As a script: ``python blender_harness.py MODULE_FILE FUNCTION JSON_KWARGS``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MARKER = "BLENDER_SCENARIO_RESULT "
EXTENSION_MODULE = "bl_ext.user_default.compact_sdf"


def run_in_blender(
    module_file: str, function: str, user_dir: Path, timeout: float = 300, **kwargs: Any
) -> Any:
    """Run ``function(**kwargs)`` from ``module_file`` in a new bpy process; returns its result."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLENDER_USER")}
    env["BLENDER_USER_RESOURCES"] = str(user_dir)
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, __file__, module_file, function, json.dumps(kwargs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"{function} failed in Blender (exit {proc.returncode}):\n{output[-8000:]}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            return {"result": json.loads(line[len(MARKER) :]), "output": output}
    raise AssertionError(f"{function} printed no result:\n{output[-8000:]}")


def build_extension(dest: Path) -> Path:
    """Build the extension zip with ``scripts/package.py`` (what a user installs); returns its path."""
    if str(REPO / "scripts") not in sys.path:
        sys.path.insert(0, str(REPO / "scripts"))
    import package

    return package.build(dest)


def run_story(module_file: str, function: str, root: Path, timeout: float, **kwargs: Any) -> dict[str, Any]:
    """Build the zip under ``root/dist`` and run ``function(zip_path=..., **kwargs)`` in Blender with its
    user folder in ``root/user``; returns the scenario's result plus Blender's ``output``."""
    zip_path = build_extension(root / "dist")
    run = run_in_blender(module_file, function, root / "user", timeout, zip_path=str(zip_path), **kwargs)
    return run["result"] | {"output": run["output"]}


def local_story(function: str, timeout: float = 900) -> Any:
    """A module-scoped ``story`` fixture: ``function`` of the test module runs once in Blender with the built
    zip and a local backend whose data stays in the run's folder (see ``install_with_local_backend``)."""
    import pytest

    @pytest.fixture(scope="module")
    def story(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
        root = tmp_path_factory.mktemp(function)
        return run_story(request.module.__file__, function, root, timeout, data_dir=str(root / "data"))

    return story


def install_extension(zip_path: str) -> str:
    """Install and enable the built zip the way "Install from Disk" does; returns the add-on module name."""
    import bpy

    result = bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True
    )
    assert result == {"FINISHED"}, result
    assert EXTENSION_MODULE in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
    return EXTENSION_MODULE


def install_with_local_backend(zip_path: str, data_dir: str) -> tuple[str, Any]:
    """Install the extension, open an empty scene, and point the local backend at this Python (the one
    with the backend installed) on the CPU with its data in ``data_dir``; returns the module and prefs."""
    import bpy

    module = install_extension(zip_path)
    bpy.ops.wm.read_homefile(use_empty=True)
    prefs = bpy.context.preferences.addons[module].preferences
    prefs.python_path, prefs.data_dir, prefs.device = sys.executable, data_dir, "cpu"
    return module, prefs


def _main() -> None:
    module_file, function, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    import bpy  # noqa: F401  (Blender first: the scenario module may import bpy-only code)

    sys.path.insert(0, str(Path(module_file).parent))
    spec = importlib.util.spec_from_file_location("blender_scenario", module_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = getattr(module, function)(**kwargs)
    print(MARKER + json.dumps(result), flush=True)
    sys.stderr.flush()
    os._exit(0)  # skip bpy's atexit teardown: it can take seconds and has nothing left to check


if __name__ == "__main__":
    _main()
