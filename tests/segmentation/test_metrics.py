"""Segmentation scores against confusion matrices worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from visionkit.segmentation import metrics as sm

# 3 classes; the bottom-right pixel is "ignore" (255) and is predicted 0, which must not count.
TRUE = np.array([[0, 0, 1], [1, 2, 255]])
PRED = np.array([[0, 1, 1], [2, 2, 0]])
# Kept pixels (true, pred): (0,0) (0,1) (1,1) (1,2) (2,2)
HAND = np.array([[1, 1, 0],
                 [0, 1, 1],
                 [0, 0, 1]])


def test_confusion_matrix_skips_the_ignore_label():
    assert np.array_equal(sm.confusion_matrix(TRUE, PRED, 3), HAND)


def test_scores_match_hand_computation():
    # IoU_c = TP / (row sum + column sum - TP): rows (2, 2, 1), columns (1, 2, 2)
    assert np.allclose(sm.class_iou(HAND), [1 / 2, 1 / 3, 1 / 2])
    assert sm.mean_iou(HAND) == pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)
    assert sm.pixel_accuracy(HAND) == pytest.approx(3 / 5)
    assert np.allclose(sm.class_dice(HAND), [2 / 3, 2 / 4, 2 / 3])
    assert np.allclose(sm.class_accuracy(HAND), [1 / 2, 1 / 2, 1])


def test_without_ignore_the_void_value_is_an_error():
    with pytest.raises(ValueError, match="label value 255"):
        sm.confusion_matrix(TRUE, PRED, 3, ignore_index=None)
    with pytest.raises(ValueError, match="prediction value 3"):
        sm.confusion_matrix([0, 1], [0, 3], 3)


def test_absent_class_is_nan_and_left_out_of_the_mean():
    matrix = np.zeros((4, 4), int)
    matrix[:3, :3] = HAND
    iou = sm.class_iou(matrix)
    assert math.isnan(iou[3])
    assert sm.mean_iou(matrix) == pytest.approx(sm.mean_iou(HAND))
    summary = sm.summarize(matrix, ["a", "b", "c", "d"])
    assert summary["classes"]["d"]["iou"] is None
    assert summary["classes"]["b"] == {"iou": pytest.approx(1 / 3), "dice": 0.5, "accuracy": 0.5,
                                       "pixels": 2, "predicted_pixels": 2}
    assert summary["confusion_matrix"][0] == [1, 1, 0, 0]


def test_accumulating_matrices_equals_one_matrix_over_all_pixels(rng):
    truths = [rng.integers(0, 3, (5, 7)) for _ in range(4)]
    preds = [rng.integers(0, 3, (5, 7)) for _ in range(4)]
    pooled = sum(sm.confusion_matrix(t, p, 3) for t, p in zip(truths, preds))
    together = sm.confusion_matrix(np.concatenate([t.ravel() for t in truths]),
                                   np.concatenate([p.ravel() for p in preds]), 3)
    assert np.array_equal(pooled, together)
    assert pooled.sum() == 4 * 35


def test_pooled_and_per_image_scores_differ_as_computed_by_hand():
    # Image A: 8 object pixels all found, 8 background right. Image B: 1 object pixel missed, 15 background right.
    a = sm.confusion_matrix([1] * 8 + [0] * 8, [1] * 8 + [0] * 8, 2)
    b = sm.confusion_matrix([1] + [0] * 15, [0] * 16, 2)
    pooled = sm.class_iou(a + b)
    assert pooled[1] == pytest.approx(8 / 9)          # TP 8, FN 1, FP 0
    assert pooled[0] == pytest.approx(23 / 24)        # TP 23, FP 1
    per_image = sm.mean_of_image_scores([a, b])
    assert per_image["class_iou"] == [pytest.approx((1 + 15 / 16) / 2), pytest.approx(0.5)]
    assert per_image["mean_iou"] == pytest.approx((1.0 + (15 / 16 + 0) / 2) / 2)
    assert per_image["pixel_accuracy"] == pytest.approx((1 + 15 / 16) / 2)


def test_empty_inputs():
    assert math.isnan(sm.pixel_accuracy(np.zeros((2, 2))))
    assert math.isnan(sm.mean_iou(np.zeros((2, 2))))
    assert sm.mean_of_image_scores([])["images"] == 0
    with pytest.raises(ValueError, match="differ in size"):
        sm.confusion_matrix([0, 1], [0], 2)
