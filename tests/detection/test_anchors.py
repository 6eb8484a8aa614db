"""k-means anchors with the 1 - IoU distance (YOLOv2 §2) and the mean best-anchor IoU."""

from __future__ import annotations

import numpy as np
import pytest

from visionkit.core.errors import DatasetError, UsageError
from visionkit.detection.anchors import kmeans_anchors, mean_best_iou


def clustered_shapes(rng, centres, per_cluster=60, noise=0.03):
    shapes = [np.asarray(c) * rng.uniform(1 - noise, 1 + noise, (per_cluster, 2)) for c in centres]
    return np.concatenate(shapes)


def test_recovers_well_separated_shapes(rng):
    truth = np.array([[0.05, 0.08], [0.3, 0.15], [0.6, 0.7]])  # sorted by area
    shapes = clustered_shapes(rng, truth)
    anchors = kmeans_anchors(shapes, k=3, seed=1)
    np.testing.assert_allclose(anchors, truth, rtol=0.03)
    assert mean_best_iou(shapes, anchors) > 0.9


def test_mean_best_iou_hand_computed():
    # a 1x1 box fits the 1x1 anchor (IoU 1); a 2x2 box overlaps it by 1 of 4 (IoU 0.25)
    assert mean_best_iou([[1, 1], [2, 2]], [[1, 1]]) == pytest.approx(0.625)
    assert mean_best_iou([[1, 1], [2, 2]], [[1, 1], [2, 2]]) == pytest.approx(1.0)


def test_more_anchors_never_fit_worse(rng):
    shapes = rng.uniform(0.02, 0.9, (300, 2))
    scores = [mean_best_iou(shapes, kmeans_anchors(shapes, k, seed=0)) for k in (1, 3, 5, 9)]
    assert scores == sorted(scores) and scores[-1] > scores[0]


def test_seeded_and_sorted_by_area(rng):
    shapes = rng.uniform(0.02, 0.9, (200, 2))
    first, second = kmeans_anchors(shapes, 5, seed=3), kmeans_anchors(shapes, 5, seed=3)
    np.testing.assert_array_equal(first, second)
    areas = first[:, 0] * first[:, 1]
    assert np.all(np.diff(areas) >= 0)


def test_bad_requests_say_what_is_wrong():
    with pytest.raises(UsageError, match="k must be at least 1"):
        kmeans_anchors([[1, 1]], k=0)
    with pytest.raises(DatasetError, match="no boxes"):
        kmeans_anchors(np.zeros((0, 2)), k=2)
    with pytest.raises(DatasetError, match="only 2 distinct box shapes for k=5"):
        kmeans_anchors([[1, 1], [2, 2], [1, 1]], k=5)
