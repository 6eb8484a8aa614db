"""Scoring a segmenter: pooled and per-image IoU against a hand-made confusion matrix, class-count checks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import write_pair
from tests.segmentation.conftest import red_image
from visionkit.core.errors import UsageError
from visionkit.segmentation import val as V


def test_evaluate_counts_pixels_like_a_hand_made_confusion_matrix(red_path, tmp_path):
    data = tmp_path / "data"
    truth = np.zeros((10, 10), np.uint8)
    truth[0:4, 0:5] = 1  # 20 object pixels, predicted right
    truth[9, 9] = 1  # 1 object pixel the model calls background (false negative)
    truth[8, 0] = 255  # ignored
    write_pair(data, "a", red_image(10, 10, (0, 0, 4, 5)), truth, image_ext=".png")
    other = np.zeros((10, 10), np.uint8)  # no object; model predicts 5 red pixels (false positives)
    write_pair(data, "b", red_image(10, 10, (0, 0, 1, 5)), other, image_ext=".png")
    report = V.evaluate(red_path, data)
    # background: TP 78 + 95 = 173, FN 5 (b), FP 1 (a); object: TP 20, FN 1, FP 5
    assert report.pooled["confusion_matrix"] == [[173, 5], [1, 20]]
    assert report.pooled["classes"]["red"]["iou"] == pytest.approx(20 / 26)
    assert report.pooled["classes"]["background"]["iou"] == pytest.approx(173 / 179)
    assert report.pooled["pixel_accuracy"] == pytest.approx(193 / 199)
    # per image: a has object IoU 20/21, b has 0 -> mean 10/21 (pooled 20/26 is not the mean of images)
    assert report.per_image["class_iou"][1] == pytest.approx(10 / 21)
    only_b = V.evaluate(red_path, data, subset="val")
    assert only_b.images == 1 and only_b.pooled["confusion_matrix"] == [[95, 5], [0, 0]]


def test_evaluate_refuses_a_class_count_mismatch(red_path, tmp_path):
    write_pair(tmp_path, "a", red_image(10, 10, (0, 0, 4, 5)), np.full((10, 10), 2, np.uint8), image_ext=".png")
    with pytest.raises(UsageError, match="3 classes but .* predicts 2"):
        V.evaluate(red_path, tmp_path)
