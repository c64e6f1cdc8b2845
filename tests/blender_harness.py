"""Run a function inside a fresh headless Blender (the real ``bpy`` module) in its own process.

bpy keeps global state (registered classes, preferences, the user's extension folder) and bundles
native libraries of its own, so every scenario gets a clean interpreter whose Blender user folder
(``BLENDER_USER_RESOURCES``) is a temporary directory. The scenario's return value comes back as JSON;
an assertion inside it fails the test with Blender's output attached.

Used by tests: ``run_in_blender(__file__, "scenario_name", user_dir, **kwargs)``.
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


def install_extension(zip_path: str) -> str:
    """Install and enable the built zip the way "Install from Disk" does; returns the add-on module name."""
    import bpy

    result = bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True
    )
    assert result == {"FINISHED"}, result
    assert EXTENSION_MODULE in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
    return EXTENSION_MODULE


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
