"""The Blender add-on gives the same defaults as the CLI and the service (issue 15).

The add-on never imports the backend, so it writes the defaults again in ``addon/constants.py``; this
compares them with the request dataclasses of ``compact_sdf.tasks`` (which own the defaults the other
front ends are checked against in ``test_defaults.py``), and the scene properties Blender shows with
those constants (real bpy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _service_helpers import addon_module
from blender_harness import REPO, run_in_blender
from compact_sdf import tasks

constants = addon_module("constants")

# request -> the add-on's defaults for it
CASES = {
    "train": (tasks.TrainRequest, constants.TRAIN_DEFAULTS),
    "extract": (tasks.ExtractRequest, constants.EXTRACT_DEFAULTS),
    "interpolate": (tasks.InterpolateRequest, constants.INTERPOLATE_DEFAULTS),
    "evaluate": (tasks.EvaluateRequest, constants.EVALUATE_DEFAULTS),
    "fit": (tasks.FitRequest, constants.FIT_DEFAULTS),
}

# scene property -> the constant it starts from (None for a train steps default shows as 0: "the preset's")
PROPERTIES = {
    "preset": constants.TRAIN_DEFAULTS["preset"],
    "steps": constants.TRAIN_DEFAULTS["steps"] or 0,
    "allow_open": constants.TRAIN_DEFAULTS["allow_open"],
    "collection": constants.TRAIN_DEFAULTS["collection"],
    "resolution": constants.EXTRACT_DEFAULTS["resolution"],
    "band": constants.EXTRACT_DEFAULTS["band"],
    "close_pinholes": constants.EXTRACT_HANDLES == "close",
    "interp_steps": constants.INTERPOLATE_DEFAULTS["steps"],
    "interp_mode": constants.INTERPOLATE_DEFAULTS["mode"],
    "interp_join_gap": constants.INTERPOLATE_DEFAULTS["join_gap"],
    "fit_iterations": constants.FIT_DEFAULTS["iterations"],
    "fit_mode": constants.FIT_DEFAULTS["mode"],
}


@pytest.mark.parametrize("op", sorted(CASES))
def test_addon_defaults_are_the_requests(op: str) -> None:
    request, ours = CASES[op]
    assert ours, f"{op}: nothing to compare"
    assert {name: tasks.default_of(request, name) for name in ours} == ours


def test_the_pinhole_choice_starts_from_the_backend_default() -> None:
    from compact_sdf.config import ExtractConfig

    assert ExtractConfig().handles == constants.EXTRACT_HANDLES


def test_the_extract_body_asks_for_closed_pinholes_only_when_ticked() -> None:
    from types import SimpleNamespace

    bodies = addon_module("bodies")
    settings = SimpleNamespace(resolution=64, band=3, close_pinholes=False)
    assert "overrides" not in bodies.extract_body("m", "a", settings)
    settings.close_pinholes = True
    assert bodies.extract_body("m", "a", settings)["overrides"] == {"extract.handles": "close"}


def test_one_scene_resolution_and_band_fit_every_operation() -> None:
    """The panel has one Resolution and one Band, so the requests must agree on them too."""
    for name in ("resolution", "band"):
        values = {op: ours[name] for op, (_, ours) in CASES.items() if name in ours}
        assert len(set(values.values())) == 1, values


def test_the_addon_and_the_service_offer_the_backend_presets() -> None:
    from typing import get_args

    from compact_sdf.config import PRESETS
    from compact_sdf.service.schemas import Preset

    assert {p[0] for p in constants.PRESETS} == set(PRESETS)
    assert set(get_args(Preset)) == set(PRESETS)


@pytest.mark.blender
def test_scene_properties_start_from_the_defaults(tmp_path: Path) -> None:
    shown = run_in_blender(__file__, "scenario_defaults", tmp_path / "user")["result"]
    assert shown == PROPERTIES


# --- runs inside Blender -------------------------------------------------------------------------


def scenario_defaults() -> dict[str, Any]:
    import sys

    import bpy

    sys.path.insert(0, str(REPO))
    import addon

    addon.register()
    rna = bpy.context.scene.compact_sdf.bl_rna.properties
    shown = {name: rna[name].default for name in PROPERTIES}
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in shown.items()}  # float32 defaults
