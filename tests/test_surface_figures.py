"""A source's area, genus and parts, and the words a reconstruction gets when it loses them."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from _service_helpers import addon_module
from compact_sdf.checkpoint import ShapeInfo
from compact_sdf.data.normalize import Normalization
from compact_sdf.extract.manifold import unique_rows
from compact_sdf.surface_figures import AREA_TOLERANCE, Figures, differences, figures, shape_stats

CELL = 2.0 / 128


def test_figures_count_handles_and_parts_of_closed_meshes_only() -> None:
    torus = trimesh.creation.torus(1.0, 0.3)
    assert figures(torus) == Figures(torus.area, 1, 1)
    far = trimesh.creation.icosphere().apply_translation((3.0, 0.0, 0.0))
    pair = trimesh.util.concatenate([trimesh.creation.icosphere(), far])
    assert (figures(pair).genus, figures(pair).parts) == (0, 2)
    opened = trimesh.Trimesh(torus.vertices, torus.faces[:-5])
    assert figures(opened) is None  # genus and parts say nothing of an open surface


def test_a_faithful_result_says_nothing_and_each_loss_is_named_with_its_cause() -> None:
    source = Figures(area=10.0, genus=8, parts=1)
    assert differences(source, Figures(10.0 * (1 + AREA_TOLERANCE * 0.9), 8, 1), CELL) == []
    lost = differences(source, Figures(8.0, 5, 3), CELL)
    assert lost[0] == "3 separate pieces where the source has 1"
    assert lost[1].startswith("genus 5 where the source has 8 (holes narrower than 0.031")
    assert lost[2] == "area -20% against the source (thin parts lost or sharp edges rounded)"
    (pinholes,) = differences(source, Figures(10.0, 30, 1), CELL)
    assert "genus 30 where the source has 8 (pinholes through walls" in pinholes


def test_figures_travel_with_the_shape_and_old_models_have_none() -> None:
    info = ShapeInfo("plate", "h", Normalization((0.0, 0.0, 0.0), 1.0), None, Figures(2.5, 24, 1))
    assert ShapeInfo.from_dict(info.to_dict()) == info
    old = {k: v for k, v in info.to_dict().items() if k != "figures"}
    assert ShapeInfo.from_dict(old).figures is None
    assert Figures.from_dict({"area": "nan", "genus": 0, "parts": 1}) is None


def test_the_panel_warns_when_a_reconstruction_lost_something() -> None:
    notes = addon_module("notes")
    kept = notes.reconstruction_summary("Reconstructed 'comb'", {"lost": []})
    assert notes.level(True, kept) == "INFO"
    lost = notes.reconstruction_summary("Reconstructed 'comb'", {"lost": ["genus 33 where the source has 0"]})
    assert notes.level(True, lost) == "WARNING"
    assert "differs from its source: genus 33 where the source has 0. Walls and gaps" in lost
    assert "Close Pinholes" in lost


def test_shape_stats_agree_with_trimesh_on_closed_and_open_meshes() -> None:
    """The one-sort figures equal trimesh's own (face adjacency, Euler number, watertight)."""
    torus = trimesh.creation.torus(1.0, 0.3)
    pair = trimesh.util.concatenate([torus, trimesh.creation.icosphere().apply_translation((4.0, 0.0, 0.0))])
    for mesh in (torus, pair, trimesh.Trimesh(torus.vertices, torus.faces[:-7])):
        nodes = np.arange(len(mesh.faces))
        parts = len(trimesh.graph.connected_components(mesh.face_adjacency, nodes=nodes))
        stats = shape_stats(mesh)
        assert stats["components"] == parts and stats["watertight"] == mesh.is_watertight
        assert stats["area"] == pytest.approx(mesh.area)
        if mesh.is_watertight:
            assert stats["genus"] == parts - mesh.euler_number // 2
    assert shape_stats(pair)["genus"] == 1 and shape_stats(torus)["manifold"]
    doubled = trimesh.Trimesh(torus.vertices, np.vstack([torus.faces, torus.faces[:3]]), process=False)
    assert not shape_stats(doubled)["manifold"]


def test_unique_rows_reads_rows_as_numbers_and_falls_back_where_they_do_not_fit() -> None:
    rows = np.array([[2, 1, 0], [0, 1, 2], [5, 3, 4], [1, 0, 3]])
    _, counts = unique_rows(rows, return_counts=True)
    assert list(counts) == [2, 1, 1]
    huge = rows + 3_000_000  # base**3 past 63 bits: rows compared as rows
    assert list(unique_rows(huge, return_counts=True)[1]) == [2, 1, 1]
