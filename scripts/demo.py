"""`make demo`: the product end to end in headless Blender, on shapes the project ships.

Builds the extension zip, installs and enables it in the bpy module (in a private Blender user folder
under out/, so a real Blender installation is left alone), starts the backend with this interpreter,
encodes a handful of shapes, reconstructs them, makes an interpolation row and a live blend, exports
the codes, saves out/demo.blend and renders out/demo.png with Cycles on the CPU.

Usage: python scripts/demo.py [--out out] [--preset tiny|preview|detail|balanced] [--steps N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from compact_sdf.config import DEFAULT_PRESET, SIZES

REPO = Path(__file__).resolve().parent.parent
ROW_Y = {"source": 2.6, "reconstruction": 0.0, "interpolation": -2.6}
SPACING_X = 2.4
COLORS = {  # base colours of the three rows (linear RGB)
    "source": (0.55, 0.55, 0.55, 1.0),
    "reconstruction": (0.85, 0.35, 0.08, 1.0),
    "interpolation": (0.10, 0.35, 0.80, 1.0),
    "live": (0.15, 0.60, 0.25, 1.0),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "out")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=tuple(SIZES))
    p.add_argument("--steps", type=int, default=200, help="training steps (0 = the preset's)")
    p.add_argument("--resolution", type=int, default=80, help="marching-cubes resolution of the results")
    p.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    p.add_argument(
        "--quick", action="store_true", help="tiny preset, few steps, low resolution (a smoke run)"
    )
    p.add_argument("--no-docs", action="store_true", help="do not copy the picture to docs/img/demo.png")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.preset, args.steps, args.resolution, args.samples = "tiny", 60, 48, 8
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    # Before bpy is imported: Blender reads its user folder once, at start.
    os.environ["BLENDER_USER_RESOURCES"] = str(out / "blender_user")
    sys.path.insert(0, str(REPO / "scripts"))
    import package

    t0 = time.monotonic()
    zip_path = package.build(out / "dist")
    log(t0, f"built {zip_path}")

    import bpy

    module = install(zip_path)
    log(t0, f"installed and enabled {module}")
    prefs = bpy.context.preferences.addons[module].preferences
    prefs.python_path = sys.executable
    prefs.data_dir = str(out / "demo_data")
    prefs.start_timeout = 180
    ops = bpy.ops.compact_sdf
    bpy.ops.wm.read_homefile(use_empty=True)
    check(ops.backend_start(), "start the backend")
    try:
        log(t0, "backend running")
        names = build_scene()
        settings = bpy.context.scene.compact_sdf
        settings.preset = args.preset
        settings.steps = args.steps
        settings.model_name = "demo"
        settings.resolution = args.resolution
        settings.interp_steps = len(names)
        settings.spacing = ROW_Y["source"] - ROW_Y["interpolation"]
        settings.preview_resolution = 48

        select(names)
        check(ops.encode_selected(), "encode")
        log(t0, f"encoded {', '.join(names)} ({args.preset}, {args.steps or 'preset'} steps)")
        select(names)
        check(ops.reconstruct(), "reconstruct")
        for name in names:  # the row in front of the sources
            bpy.data.objects[f"{name} SDF"].location.y = ROW_Y["reconstruction"]
        log(t0, "reconstructed")
        select([names[0], names[-1]])
        check(ops.interpolate(), "interpolate")
        log(t0, f"interpolated {names[0]} -> {names[-1]} in {len(names)} steps")
        select([names[0], names[-1]])
        check(ops.live_create(), "live interpolation")
        live = next(o for o in bpy.data.objects if o.get("compact_sdf_role") == "live")
        live.compact_sdf.live_factor = 0.3
        live.location = (
            SPACING_X * len(names) + 0.4,
            ROW_Y["interpolation"],
            live.location.z,
        )  # after the row
        log(t0, "live blend at 0.3")
        select([names[0]])
        codes = out / "demo_codes.json"
        check(ops.export_codes(filepath=str(codes), file_format="json"), "export codes")
        log(t0, f"exported codes to {codes}")
    finally:
        ops.backend_stop()

    dress_scene(names)
    blend = out / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    png = render(out / "demo.png", args.samples)
    log(t0, "rendered")
    if not args.no_docs:
        docs_png = REPO / "docs" / "img" / "demo.png"
        docs_png.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, docs_png)
    print(f"\nDemo finished in {time.monotonic() - t0:.0f} s")
    print(f"  scene:   {blend}")
    print(f"  picture: {png}")
    print(f"  codes:   {codes}")
    print(f"  backend data (meshes, model, results): {out / 'demo_data'}")
    sys.stdout.flush()
    os._exit(0)  # skip bpy's slow teardown; everything is written


def log(t0: float, text: str) -> None:
    print(f"[demo {time.monotonic() - t0:6.1f} s] {text}", flush=True)


def check(result: set[str], what: str) -> None:
    if result != {"FINISHED"}:
        raise SystemExit(f"demo: {what} did not finish ({result})")


def install(zip_path: Path) -> str:
    import bpy

    result = bpy.ops.extensions.package_install_files(
        filepath=str(zip_path), repo="user_default", enable_on_install=True
    )
    check(result, "install the extension")
    return "bl_ext.user_default.compact_sdf"


def select(names: list[str]) -> None:
    import bpy

    for obj in bpy.context.view_layer.objects:
        obj.select_set(obj.name in names)
    bpy.context.view_layer.objects.active = bpy.data.objects[names[0]]


def build_scene() -> list[str]:
    """The shipped shapes (compact_sdf.data.shapes: Spot and procedural solids) in a row, Z up."""
    import bpy
    from compact_sdf.data.shapes import builtin_shapes

    shapes = builtin_shapes()
    order = [("Spot", "spot"), ("Sphere", "sphere"), ("Rounded box", "rounded_box"), ("Torus", "torus")]
    rotations = {"spot": (1.5708, 0.0, 1.3), "torus": (1.1, 0.0, 0.0), "rounded_box": (0.0, 0.0, 0.5)}
    names = []
    for i, (name, key) in enumerate(order):
        tm = shapes[key]
        tm.apply_scale(1.6 / max(tm.extents))
        mesh = bpy.data.meshes.new(name)
        mesh.from_pydata(tm.vertices.tolist(), [], tm.faces.tolist())
        mesh.shade_smooth()
        obj = bpy.data.objects.new(name, mesh)
        bpy.context.scene.collection.objects.link(obj)
        obj.location = (i * SPACING_X, ROW_Y["source"], 0.85)
        obj.rotation_euler = rotations.get(key, (0.0, 0.0, 0.0))
        names.append(name)
    bpy.context.view_layer.update()  # objects linked through the data API get their view-layer bases now
    return names


def material(name: str, color: tuple[float, float, float, float]) -> object:
    import bpy

    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    bsdf.inputs["Base Color"].default_value = color
    bsdf.inputs["Roughness"].default_value = 0.45
    return mat


def dress_scene(names: list[str]) -> None:
    """Materials per row, labels, a floor, light and camera."""
    import bpy

    for obj in bpy.data.objects:
        if obj.type != "MESH":
            continue
        role = obj.get("compact_sdf_role", "source")
        obj.data.materials.clear()
        obj.data.materials.append(material(f"demo {role}", COLORS.get(role, COLORS["source"])))
    width = SPACING_X * (len(names) - 1)
    labels = (
        ("sources", "source"),
        ("reconstructions", "reconstruction"),
        ("interpolation + live", "interpolation"),
    )
    for label, row in labels:
        bpy.ops.object.text_add(location=(-1.3, ROW_Y[row], 0.25), rotation=(1.0, 0.0, 0.0))
        text = bpy.context.active_object
        text.data.body = label
        text.data.size = 0.5
        text.data.align_x = "RIGHT"
        text.visible_shadow = False
        text.data.materials.append(material("demo label", (0.05, 0.05, 0.05, 1.0)))
    bpy.ops.mesh.primitive_plane_add(size=60, location=(width / 2, 0, -0.02))
    floor = bpy.context.active_object
    floor.name = "Floor"
    floor.data.materials.append(material("demo floor", (0.9, 0.9, 0.88, 1.0)))
    bpy.ops.object.light_add(type="SUN", rotation=(0.6, 0.2, 0.4))
    bpy.context.active_object.data.energy = 3.5
    bpy.ops.object.camera_add(location=(width / 2 - 1.0, -12.5, 10.0), rotation=(0.93, 0.0, 0.0))
    cam = bpy.context.active_object
    cam.data.lens = 27
    scene = bpy.context.scene
    scene.camera = cam
    world = bpy.data.worlds.new("demo world")
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.8, 0.82, 0.86, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.6
    scene.world = world


def render(path: Path, samples: int) -> Path:
    import bpy

    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.resolution_x, scene.render.resolution_y = 800, 450
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
