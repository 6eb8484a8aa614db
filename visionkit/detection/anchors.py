"""Anchor boxes (priors) chosen from the data: k-means on box shapes with the distance d = 1 - IoU.

Redmon & Farhadi, "YOLO9000: Better, Faster, Stronger" (CVPR 2017), §2 "Dimension Clusters": Euclidean k-means
favours large boxes, so the distance is one minus the IoU of two boxes of those shapes placed at the same corner.
Their Table 1 reports the "Avg IOU" of each box to its closest prior (61.0 for k = 5 on VOC 2007), which
:func:`mean_best_iou` computes.

Hand-written because scikit-learn's ``KMeans`` supports only the Euclidean distance; the loop is Lloyd's algorithm
(assign each shape to the prior of highest IoU, move each prior to the mean shape of its members) with a
k-means++ start that samples by the same distance. Shapes are (width, height) in any unit (visionkit uses
fractions of the letterboxed input side, so anchors do not depend on the input size).
"""

from __future__ import annotations

import numpy as np

from visionkit.core.errors import DatasetError, UsageError
from visionkit.detection.boxes import wh_iou


def _plus_plus_start(sizes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) with d = 1 - IoU."""
    centres = [sizes[rng.integers(len(sizes))]]
    for _ in range(1, k):
        distance = 1.0 - wh_iou(sizes, np.array(centres)).max(axis=1)
        weights = distance ** 2
        if weights.sum() <= 0:
            centres.append(sizes[rng.integers(len(sizes))])
        else:
            centres.append(sizes[rng.choice(len(sizes), p=weights / weights.sum())])
    return np.array(centres, dtype=np.float64)


def kmeans_anchors(sizes, k: int = 5, seed: int = 0, iterations: int = 300, restarts: int = 5) -> np.ndarray:
    """``k`` anchor shapes (k, 2) for box ``sizes`` (N, 2) = (width, height), sorted by area.

    Runs ``restarts`` seeded k-means++ starts and keeps the one with the highest mean best-anchor IoU.
    """
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if k < 1:
        raise UsageError(f"k must be at least 1, received {k}")
    sizes = sizes[(sizes > 0).all(axis=1)]
    if len(sizes) == 0:
        raise DatasetError("no boxes with a positive width and height to cluster; is the data set labelled?")
    distinct = np.unique(sizes, axis=0)
    if len(distinct) < k:
        raise DatasetError(f"only {len(distinct)} distinct box shapes for k={k} anchors; use a smaller -k")
    rng = np.random.default_rng(seed)
    best, best_score = None, -1.0
    for _ in range(max(1, restarts)):
        centres = _plus_plus_start(sizes, k, rng)
        assignment = np.full(len(sizes), -1)
        for _ in range(iterations):
            new_assignment = wh_iou(sizes, centres).argmax(axis=1)
            if np.array_equal(new_assignment, assignment):
                break
            assignment = new_assignment
            for cluster in range(k):
                members = sizes[assignment == cluster]
                if len(members):
                    centres[cluster] = members.mean(axis=0)
                else:  # an empty cluster takes the shape worst served so far
                    centres[cluster] = sizes[wh_iou(sizes, centres).max(axis=1).argmin()]
        score = mean_best_iou(sizes, centres)
        if score > best_score:
            best, best_score = centres.copy(), score
    return best[np.argsort(best[:, 0] * best[:, 1])]


def mean_best_iou(sizes, anchors) -> float:
    """Mean over boxes of the IoU with the best-fitting anchor ("Avg IOU", YOLOv2 Table 1)."""
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if len(sizes) == 0:
        return 0.0
    return float(wh_iou(sizes, anchors).max(axis=1).mean())
