"""The same-budget baselines (research/baselines.py): budgets match the built models, codes-only learns.

Run from this folder: ``PYTHONPATH=../tests ../.venv/bin/python -m pytest -q test_baselines.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests")]
from _train_helpers import sphere_and_box, tiny_config  # noqa: E402
from baselines import (  # noqa: E402
    CodesOnlySDF,
    codes_only_width,
    dual_parameters,
    parameter_count,
    per_shape_config,
    train_codes_only,
)
from compact_sdf.config import get_preset  # noqa: E402
from compact_sdf.model import DualSDF  # noqa: E402


def test_parameter_budgets_match_the_built_models() -> None:
    for name in ("tiny", "preview"):
        cfg = get_preset(name)
        budget = dual_parameters(cfg.model, 12)
        assert budget == parameter_count(DualSDF(cfg.model, 12))
        small = per_shape_config(cfg, budget, 12)
        assert parameter_count(DualSDF(small.model, 1)) <= budget // 12
    mc = get_preset("preview").model
    width = codes_only_width(mc, 50, dual_parameters(mc, 50))
    assert 0.97 * dual_parameters(mc, 50) < _codes_only_params(mc, width) <= dual_parameters(mc, 50)


def _codes_only_params(mc, width: int) -> int:
    return parameter_count(CodesOnlySDF(mc.code_dim, width, mc.layers, mc.pe_freqs, 50))


def test_codes_only_baseline_learns_and_stops_on_request() -> None:
    torch.set_num_threads(1)
    shapes = sphere_and_box()
    cfg = tiny_config(steps=40, lr_mlp=3e-3)
    budget = dual_parameters(cfg.model, 2)
    res = train_codes_only(shapes, cfg, budget)
    assert res.steps == 40 and res.parameters <= budget
    x = torch.as_tensor(shapes[0].ovf_points[:2000])
    y = torch.as_tensor(shapes[0].ovf_sdf[:2000])
    with torch.no_grad():
        err = (res.model.sdf(res.model.codes.weight[0], x) - y).abs().mean().item()
    assert err < 0.1  # an untrained net (sphere of radius 0.5) is about 0.1-0.2 off here
    calls = iter(range(100))
    stopped = train_codes_only(shapes, cfg, budget, should_stop=lambda: next(calls) >= 5)
    assert stopped.steps == 5
