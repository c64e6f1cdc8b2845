"""`make package`: validate the manifest and build dist/compact_sdf-<version>.zip with Blender's own
extension tool (``blender_ext.py`` from the bpy wheel), so the zip is exactly what Blender accepts.

Usage: python scripts/package.py [--output-dir DIR]   (prints the zip's path on its last line)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Files the extension cannot work without: the add-on entry, its package and the backend it installs.
REQUIRED = (
    "blender_manifest.toml",
    "__init__.py",
    "addon/__init__.py",
    "backend/pyproject.toml",
    "backend/compact_sdf/__init__.py",
)
# Everything else (tests, bench, research, docs, scripts, build outputs) stays out of the zip.
ALLOWED_TOP = frozenset({"blender_manifest.toml", "__init__.py", "LICENSE", "addon", "backend"})


class PackageError(Exception):
    """The extension tool refused the package, or the zip lacks what the add-on needs."""


def blender_ext() -> Path:
    """Blender's extension CLI inside the installed bpy wheel."""
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise PackageError("the bpy module is not installed: run `make venv` first")
    root = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(root.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise PackageError(f"blender_ext.py not found under {root}")
    return found[-1]


def manifest_version(source: Path = REPO) -> str:
    with (source / "blender_manifest.toml").open("rb") as f:
        return str(tomllib.load(f)["version"])


def _run(args: list[str]) -> str:
    proc = subprocess.run([sys.executable, str(blender_ext()), *args], capture_output=True, text=True)
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise PackageError(f"blender_ext {args[0]} failed: {out}")
    return out


def validate(path: Path) -> None:
    """Run the tool's validation on a source folder or a built zip."""
    _run(["validate", str(path)])


def check_zip(zip_path: Path) -> list[str]:
    """The zip's names, after checking the required files are in and only the add-on, the backend,
    the manifest and the licence are."""
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
    missing = [r for r in REQUIRED if r not in names]
    leaked = sorted(
        {n.split("/")[0] for n in names if n.split("/")[0] not in ALLOWED_TOP or "__pycache__" in n}
    )
    if missing or leaked:
        raise PackageError(
            f"{zip_path.name}: missing {missing or 'nothing'}, should not contain {leaked or 'nothing'}"
        )
    return names


def build(output_dir: Path, source: Path = REPO) -> Path:
    """Validate the sources, build the zip, validate and check the zip; returns its path."""
    validate(source)
    output_dir.mkdir(parents=True, exist_ok=True)
    zip_path = output_dir / f"compact_sdf-{manifest_version(source)}.zip"
    zip_path.unlink(missing_ok=True)
    _run(["build", "--source-dir", str(source), "--output-filepath", str(zip_path)])
    validate(zip_path)
    check_zip(zip_path)
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=REPO / "dist")
    args = parser.parse_args(argv)
    try:
        zip_path = build(args.output_dir)
    except PackageError as exc:
        print(f"package: error: {exc}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(zip_path) as zf:
        count = len(zf.namelist())
    print(f"built {count} files, {zip_path.stat().st_size / 1024:.0f} KiB")
    print(zip_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
