"""The one table of allowed values (bounds.py): complete, met by every preset, enforced by
``Config.override`` with a one-line reason, and stated by the service's OpenAPI description."""

from __future__ import annotations

import dataclasses
import math

import pytest
from compact_sdf import bounds
from compact_sdf.config import PRESETS, Config, config_sections, get_preset


def _numeric_settings() -> set[str]:
    cfg = Config()
    return {
        f"{section}.{f.name}"
        for section in config_sections()
        for f in dataclasses.fields(getattr(cfg, section))
        if type(getattr(getattr(cfg, section), f.name)) in (int, float)
    }


def test_every_numeric_setting_has_a_bound() -> None:
    assert _numeric_settings() == set(bounds.SETTINGS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_within_the_bounds(name: str) -> None:
    cfg = PRESETS[name]
    for dotted, bound in bounds.SETTINGS.items():
        section, key = dotted.split(".")
        value = getattr(getattr(cfg, section), key)
        assert bounds.check(dotted, value, type(value), bound) == value


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ("model.hidden=40000", "model.hidden must be >= 1 and <= 4096"),
        ("train.steps=1e400", "finite"),
        ("train.steps=0", "train.steps must be >= 1"),
        ("train.steps=-5", "train.steps must be >= 1"),
        ("train.steps=nan", "finite"),
        ("train.steps=2.5", "whole number"),
        ("model.grid_res=0", "model.grid_res must be >= 2"),
        ("model.layers=0", "model.layers must be >= 1"),
        ("model.hidden=0", "model.hidden must be >= 1"),
        ("model.code_dim=-1", "model.code_dim must be >= 1"),
        ("train.loss=nope", "must be one of mse, l1"),
        ("train.precision=fp64", "must be one of fp32, tf32, bf16"),
        ("train.device=../x", "must be auto, cpu, cuda or cuda:N"),
        ("train.samples_per_shape=0", "train.samples_per_shape must be >= 1"),
        ("sampling.band_width=-1", "sampling.band_width must be > 0"),
        ("train.lr_grid=inf", "finite"),
        ("train.sparse_grid=maybe", "expects bool"),
    ],
)
def test_override_refuses_with_one_line(override: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        get_preset("tiny").override([override])
    assert reason in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "values",
    [{"train.steps": True}, {"train.loss": 5}, {"train.steps": math.inf}, {"model.hidden": 12.5}],
)
def test_override_refuses_wrong_kinds_from_json(values: dict) -> None:
    with pytest.raises(ValueError):
        get_preset("tiny").override(values)


def test_override_accepts_values_within_the_bounds() -> None:
    cfg = get_preset("tiny").override(
        {
            "train.steps": 200.0,
            "train.device": "cuda:1",
            "sampling.allow_open": "yes",
            "train.log_every": 10**9,
        }
    )
    assert (cfg.train.steps, cfg.train.device, cfg.sampling.allow_open) == (200, "cuda:1", True)
    assert isinstance(cfg.train.steps, int)
