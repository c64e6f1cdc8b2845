"""Reconstruction quality (method.md section 6): Chamfer, precision/recall/F-score, normal consistency.

All distances are in normalised units: both meshes are mapped with the *ground truth's*
``Normalization`` (bounding box centred, longest side 1.8), so numbers compare across shapes and
with the paper. Two Chamfer protocols are reported:

- ``chamfer``: area-uniform samples on both meshes (``samples`` each, default 1M; with fewer the
  sampling noise floor dominates good reconstructions, see method.md section 6);
- ``chamfer_release``: the authors' release, GT *vertices* against ``release_samples`` (100k)
  area-uniform samples on the reconstruction.

Chamfer is the sum of the two mean *squared* nearest-neighbour distances. Precision is the share of
reconstruction samples closer than tau to the GT samples, recall the share of GT samples closer
than tau to the reconstruction, F = 2PR/(P+R). Normal consistency is the mean |cos| between each
sample's face normal and that of its nearest neighbour on the other mesh, averaged both ways.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from compact_sdf.data.normalize import Normalization
from compact_sdf.errors import CompactSDFError
from compact_sdf.progress import Progress, check_stop

TAUS = (0.005, 0.01)


def sample_surface(mesh: trimesh.Trimesh, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` area-uniform surface points and the unit normals of their faces."""
    if len(mesh.faces) == 0 or mesh.area <= 0:
        raise CompactSDFError("cannot sample an empty mesh (no faces or zero area)")
    points, face = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points), np.asarray(mesh.face_normals[face])


def nearest(query: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each query point to its nearest reference point, and that point's index."""
    dist, index = cKDTree(reference).query(query, workers=-1)
    return dist, index


def chamfer(pred_to_gt: np.ndarray, gt_to_pred: np.ndarray) -> float:
    """Sum of the two mean squared nearest-neighbour distances."""
    return float(np.mean(pred_to_gt**2) + np.mean(gt_to_pred**2))


def precision_recall_fscore(pred_to_gt: np.ndarray, gt_to_pred: np.ndarray, tau: float) -> dict[str, float]:
    precision = float(np.mean(pred_to_gt < tau))
    recall = float(np.mean(gt_to_pred < tau))
    fscore = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "fscore": fscore}


def normal_consistency(
    pred_normals: np.ndarray, gt_normals: np.ndarray, pred_nn: np.ndarray, gt_nn: np.ndarray
) -> float:
    """Mean |cos| between matched normals, both directions (``*_nn``: index of the nearest other point)."""
    a = np.abs(np.sum(pred_normals * gt_normals[pred_nn], axis=1))
    b = np.abs(np.sum(gt_normals * pred_normals[gt_nn], axis=1))
    return float((a.mean() + b.mean()) / 2)


def point_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    pred_normals: np.ndarray | None = None,
    gt_normals: np.ndarray | None = None,
    taus: tuple[float, ...] = TAUS,
) -> dict[str, float]:
    """All sample-based figures for two point sets already in normalised units."""
    pred_to_gt, pred_nn = nearest(pred, gt)
    gt_to_pred, gt_nn = nearest(gt, pred)
    out = {"chamfer": chamfer(pred_to_gt, gt_to_pred)}
    for tau in taus:
        for key, value in precision_recall_fscore(pred_to_gt, gt_to_pred, tau).items():
            out[f"{key}@{tau:g}"] = value
    if pred_normals is not None and gt_normals is not None:
        out["normal_consistency"] = normal_consistency(pred_normals, gt_normals, pred_nn, gt_nn)
    return out


def normalized(mesh: trimesh.Trimesh, normalization: Normalization) -> trimesh.Trimesh:
    return trimesh.Trimesh(normalization.to_unit(mesh.vertices), mesh.faces, process=False)


def evaluate_meshes(
    pred: trimesh.Trimesh,
    gt: trimesh.Trimesh,
    *,
    normalization: Normalization | None = None,
    samples: int = 1_000_000,
    release_samples: int = 100_000,
    taus: tuple[float, ...] = TAUS,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, float]:
    """Compare a reconstruction with its ground truth, both given in the object's own coordinates.

    ``normalization`` defaults to the one fitted to ``gt`` (what training uses).
    """
    report = progress or (lambda text, fraction: None)
    norm = normalization or Normalization.fit(gt.vertices)
    pred_u, gt_u = normalized(pred, norm), normalized(gt, norm)
    report("sampling", 0.0)
    pred_pts, pred_n = sample_surface(pred_u, samples, seed)
    gt_pts, gt_n = sample_surface(gt_u, samples, seed + 1)
    check_stop()
    report("distances", 0.3)
    out = point_metrics(pred_pts, gt_pts, pred_n, gt_n, taus)
    check_stop()
    report("release Chamfer", 0.9)
    release_pts = sample_surface(pred_u, release_samples, seed + 2)[0]
    out["chamfer_release"] = chamfer(
        nearest(release_pts, gt_u.vertices)[0], nearest(gt_u.vertices, release_pts)[0]
    )
    out["samples"] = samples
    out["release_samples"] = release_samples
    return out
