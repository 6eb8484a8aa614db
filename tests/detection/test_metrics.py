"""AP with all-point interpolation, checked against examples computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from visionkit.detection.metrics import average_precision, evaluate_detections, match_image


def box(x, y, size=10.0):
    return [x, y, x + size, y + size]


def test_hand_computed_ap_at_iou_05():
    """Three ground-truth boxes in two images, five detections.

    by score: 0.9 TP (img1 A) | 0.8 FP (img2, nothing there) | 0.7 TP (img1 B) | 0.6 FP (img1, A again) |
    0.5 TP (img2 C). Precision 1, 1/2, 2/3, 1/2, 3/5 at recall 1/3, 1/3, 2/3, 2/3, 1.
    All-point interpolation: recall rises at 1/3 (best precision from there on: 1), at 2/3 (best: 2/3) and at
    1 (best: 3/5), so AP = (1 + 2/3 + 3/5) / 3 = 0.755…
    """
    truths = [(np.array([box(0, 0), box(50, 50)]), np.array([0, 0])), (np.array([box(20, 20)]), np.array([0]))]
    predictions = [
        (np.array([box(0, 0), box(51, 50), box(1, 0)]), np.array([0.9, 0.7, 0.6]), np.array([0, 0, 0])),
        (np.array([box(80, 80), box(20, 21)]), np.array([0.8, 0.5]), np.array([0, 0])),
    ]
    metrics = evaluate_detections(predictions, truths, num_classes=1, thresholds=(0.5,))
    assert metrics.ap[0, 0] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert metrics.map50 == pytest.approx(0.7555555555)
    recall, precision = metrics.curves[0]
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3, 1 / 2, 3 / 5])
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])


def test_coco_range_counts_the_thresholds_a_box_passes():
    # a 10x10 box shifted by 1 px: IoU = 90 / 110 = 0.818 -> a hit at 0.50 … 0.80 (7 of 10 thresholds)
    truths = [(np.array([box(0, 0)]), np.array([0]))]
    predictions = [(np.array([box(1, 0)]), np.array([0.9]), np.array([0]))]
    metrics = evaluate_detections(predictions, truths, num_classes=1)
    np.testing.assert_array_equal(metrics.ap[0], [1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
    assert metrics.map50 == 1.0 and metrics.map50_95 == pytest.approx(0.7)


def test_classes_without_truth_are_left_out_and_missed_classes_score_zero():
    truths = [(np.array([box(0, 0), box(30, 30)]), np.array([0, 2]))]
    predictions = [(np.array([box(0, 0), box(60, 60)]), np.array([0.9, 0.8]), np.array([0, 1]))]
    metrics = evaluate_detections(predictions, truths, num_classes=3, thresholds=(0.5,))
    assert metrics.ap[0, 0] == 1.0 and np.isnan(metrics.ap[1, 0]) and metrics.ap[2, 0] == 0.0
    assert metrics.map50 == pytest.approx(0.5)
    assert metrics.positives.tolist() == [1, 0, 1] and metrics.detections.tolist() == [1, 1, 0]


def test_a_duplicate_is_a_false_positive_and_the_best_overlap_is_matched():
    truth = np.array([box(0, 0), box(4, 0)])
    detections = np.array([box(3, 0), box(0, 0), box(0, 0)])
    # 3,0 overlaps 4,0 best (IoU 0.82) rather than 0,0 (0.54); 0,0 then takes 0,0; the last is a duplicate
    assert match_image(detections, [0.9, 0.8, 0.7], truth, 0.5).tolist() == [True, True, False]


def test_all_point_interpolation_of_a_curve():
    # precision dips and recovers: the envelope lifts the dip (0.5 -> 0.75)
    assert average_precision([0.25, 0.5, 0.75, 1.0], [1.0, 0.5, 0.75, 0.5]) == pytest.approx(
        0.25 * 1.0 + 0.25 * 0.75 + 0.25 * 0.75 + 0.25 * 0.5)
    assert average_precision([], []) == 0.0


def test_no_detections_at_all():
    truths = [(np.array([box(0, 0)]), np.array([0]))]
    metrics = evaluate_detections([(np.zeros((0, 4)), np.zeros(0), np.zeros(0))], truths, 1)
    assert metrics.map50 == 0.0 and metrics.map50_95 == 0.0
