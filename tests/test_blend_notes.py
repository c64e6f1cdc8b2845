"""What an in-between says about itself: a blend that comes back in more pieces than its ends is
reported in words (service header, job result, CLI, panel), and the join that prevents it is
checked on a field that pinches off on purpose."""

from __future__ import annotations

from pathlib import Path

import torch
from _service_helpers import addon_module
from _train_helpers import tiny_config
from compact_sdf import tasks
from compact_sdf.checkpoint import LoadedModel, ShapeInfo
from compact_sdf.config import ExtractConfig
from compact_sdf.data.normalize import Normalization
from compact_sdf.extract.connect import JOIN_GAP
from compact_sdf.extract.interpolate import interpolate_shapes
from compact_sdf.surface_figures import Figures, blend_differences, figures

CENTRE, RADIUS = 0.45, 0.4  # two balls 0.1 apart once the neck between them is gone


class Dumbbell(torch.nn.Module):
    """Two balls joined by a neck of radius ``0.15 |z0| - 0.02``: the ends (z0 = +-1) are one body,
    the midpoint (z0 = 0) has no neck, so its field is two balls 0.1 apart (under ``JOIN_GAP``)."""

    def __init__(self) -> None:
        super().__init__()
        self.codes = torch.nn.Embedding(2, 1)
        with torch.no_grad():
            self.codes.weight[:] = torch.tensor([[1.0], [-1.0]])

    def sdf_gen(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        c = z[:, None, :] if z.dim() == 2 else z
        offset = torch.tensor([CENTRE, 0.0, 0.0])
        balls = torch.minimum((x - offset).norm(dim=-1), (x + offset).norm(dim=-1)) - RADIUS
        along = x[..., 0].clamp(-CENTRE, CENTRE)
        neck = torch.stack([x[..., 0] - along, x[..., 1], x[..., 2]], dim=-1).norm(dim=-1)
        return torch.minimum(balls, neck - (0.15 * c[..., 0].abs() - 0.02))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*x.shape[:-1], 1)

    def sdf_ovf(self, z: torch.Tensor, x: torch.Tensor, feats: torch.Tensor | None = None) -> torch.Tensor:
        return self.sdf_gen(z, x)


def dumbbell_model() -> LoadedModel:
    one_body = Figures(area=3.0, genus=0, parts=1)  # area: less than the field's
    shapes = [ShapeInfo(n, "h", Normalization((0.0, 0.0, 0.0), 1.0), None, one_body) for n in ("a", "b")]
    return LoadedModel(Dumbbell(), tiny_config(), shapes, 1, Path("."))


def test_the_rule_names_extra_pieces_and_open_surfaces_but_not_genus_or_area() -> None:
    ends = [Figures(3.0, 2, 1), Figures(5.0, 0, 2)]
    assert blend_differences(ends, Figures(1.0, 7, 2)) == []  # as many pieces as an end has
    (extra,) = blend_differences(ends, Figures(4.0, 0, 3))
    assert extra.startswith("3 separate pieces where the shapes it blends have at most 2")
    assert "join gap" in extra
    assert blend_differences([None, None], Figures(4.0, 0, 2))[0].startswith("2 separate pieces")
    assert "not a closed surface" in blend_differences(ends, None)[0]


def test_a_pinched_in_between_is_joined_or_reported_never_silent() -> None:
    loaded = dumbbell_model()
    cfg = ExtractConfig(resolution=64)
    rows = [[0.5, 0.5]]
    (apart,) = interpolate_shapes(loaded, ["a", "b"], rows, cfg=cfg, join_gap=0.0)
    assert figures(apart.to_trimesh()).parts == 2
    (note,) = tasks.judge(loaded, ["a", "b"], rows[0], apart).lost
    assert note.startswith("2 separate pieces where the shapes it blends have at most 1")
    (joined,) = interpolate_shapes(loaded, ["a", "b"], rows, cfg=cfg, join_gap=JOIN_GAP)
    assert figures(joined.to_trimesh()).parts == 1
    assert tasks.judge(loaded, ["a", "b"], rows[0], joined).lost == ()


def test_an_end_is_judged_against_its_own_source() -> None:
    loaded = dumbbell_model()
    (end,) = interpolate_shapes(loaded, ["a", "b"], [[1.0, 0.0]], cfg=ExtractConfig(resolution=64))
    measured = figures(end.to_trimesh())
    assert (measured.parts, measured.genus) == (1, 0)
    (area,) = tasks.judge(loaded, ["a", "b"], [1.0, 0.0], end).lost  # the recorded area is 3.0
    assert area.startswith(f"area {100 * (measured.area / 3.0 - 1):+.0f}% against the source")


def test_the_panel_warns_about_a_broken_blend_and_names_the_steps_of_a_row() -> None:
    notes = addon_module("notes")
    assert notes.blend_note("Live a-b", "") is None
    warn = notes.blend_note("Live a-b", "2 separate pieces where the shapes it blends have at most 1")
    assert notes.level(True, warn) == "WARNING" and warn.startswith("'Live a-b' at these weights: 2 separate")
    clean = notes.row_summary("Interpolated 5", {"files": ["interp_00.ply"], "lost": {}})
    assert notes.level(True, clean) == "INFO"
    row = notes.row_summary("Interpolated 5", {"lost": {"interp_02.ply": ["2 separate pieces"]}})
    assert notes.level(True, row) == "WARNING"
    assert row == "Interpolated 5, but not all as asked: interp_02: 2 separate pieces"
