"""handles.close_shallow_handles: shallow perforations and bridges close; true holes, thin legs and
open shells stay (analytic fields on a lattice, N = 64, a 64-cell training lattice)."""

from __future__ import annotations

import numpy as np
import pytest
from compact_sdf.extract.dense import mesh_volume
from compact_sdf.extract.handles import close_shallow_handles, quarter_cell
from compact_sdf.surface_figures import shape_stats

N = 64
Q = quarter_cell(N)  # 0.0078
SHALLOW = 0.1 * Q  # how far the "wrong" vertices are on the wrong side


def grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.meshgrid(*[np.linspace(-1, 1, N + 1)] * 3, indexing="ij"))  # type: ignore[return-value]


def topology(field: np.ndarray) -> tuple[int, int]:
    stats = shape_stats(mesh_volume(field).to_trimesh())
    assert stats["manifold"] and stats["watertight"]
    return stats["genus"], stats["components"]


def at(x: np.ndarray, value: float) -> tuple[int, ...]:
    """The lattice index nearest to ``value`` along one axis."""
    return int(np.argmin(np.abs(x[:, 0, 0] - value)))  # type: ignore[return-value]


def test_a_shallow_perforation_closes_and_a_true_hole_stays() -> None:
    """A plate one lattice vertex thick with a true hole (radius 0.15) and a wrong-signed patch of
    two by two vertices a tenth of q outside: genus 2 -> 1."""
    x, y, z = grid()
    plate = np.maximum.reduce([np.abs(y) - 0.01, np.abs(x) - 0.6, np.abs(z) - 0.6])
    field = np.maximum(plate, 0.15 - np.hypot(x - 0.3, z - 0.3))
    i, j, k = at(x, -0.3), at(x, 0.0), at(x, -0.3)
    field[i : i + 2, j, k : k + 2] = SHALLOW
    assert topology(field) == (2, 1)
    assert close_shallow_handles(field, Q) == (1, 0)
    assert topology(field) == (1, 1)
    assert field[at(x, 0.3), j, at(x, 0.3)] > 0.1  # the true hole is untouched


def test_a_deep_perforation_stays() -> None:
    """The same patch, but deeper than q outside: a hole the model means; nothing changes."""
    x, y, z = grid()
    field = np.maximum.reduce([np.abs(y) - 0.01, np.abs(x) - 0.6, np.abs(z) - 0.6])
    i, j, k = at(x, -0.3), at(x, 0.0), at(x, -0.3)
    field[i : i + 2, j, k : k + 2] = 2 * Q
    before = field.copy()
    assert close_shallow_handles(field, Q) == (0, 0)
    assert topology(field) == (1, 1) and np.array_equal(np.sign(field), np.sign(before))


def thin_ring(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """A ring in the xz plane (radius 0.5) whose tube is about three lattice vertices thick."""
    return np.hypot(np.hypot(x, z) - 0.5, y) - 0.05


def test_a_shallow_bridge_is_cut_but_a_thin_leg_is_not() -> None:
    """A ring with a gap at +x whose vertices are a tenth of q inside (a bridge: genus 1) is cut
    (genus 0); the same cut on a leg that holds a knob on would make two parts, so it stays."""
    x, y, z = grid()
    ring = thin_ring(x, y, z)
    gap = (x > 0) & (np.abs(z) < 0.04)
    bridged = np.where(gap & (ring < 0), -SHALLOW, np.where(gap, np.maximum(ring, 0.04 - np.abs(z)), ring))
    assert topology(bridged) == (1, 1)
    assert close_shallow_handles(bridged, Q) == (0, 1)
    assert topology(bridged) == (0, 1)

    ball = np.sqrt((x + 0.4) ** 2 + y**2 + z**2) - 0.3
    leg = np.maximum(np.hypot(y, z) - 0.02, np.abs(x - 0.2) - 0.4)
    knob = np.sqrt((x - 0.65) ** 2 + y**2 + z**2) - 0.08
    body = np.minimum.reduce([ball, leg, knob])
    neck = (np.abs(x - 0.2) < 0.04) & (body < 0)
    body[neck] = -SHALLOW
    assert topology(body) == (0, 1)
    assert close_shallow_handles(body, Q) == (0, 0)
    assert topology(body) == (0, 1)


def test_closing_the_only_opening_of_a_shell_is_refused() -> None:
    """A hollow shell whose one small opening is shallow: closing it would make a cavity."""
    x, y, z = grid()
    r = np.sqrt(x**2 + y**2 + z**2)
    shell = np.abs(r - 0.5) - 0.02
    opening = (np.hypot(x, z) < 0.03) & (y > 0) & (shell < 0)
    shell[opening] = SHALLOW
    assert topology(shell) == (0, 1)
    assert close_shallow_handles(shell, Q) == (0, 0)


@pytest.mark.parametrize("fine_cells", [64, 128, 512])
def test_the_depth_is_a_quarter_of_a_training_cell(fine_cells: int) -> None:
    assert quarter_cell(fine_cells) == pytest.approx(2.0 / fine_cells / 4)
