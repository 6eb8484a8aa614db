"""YOLOv3/v4 head decoding (``visionkit.detection.decode``): the formulas by hand, the v2 path unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from visionkit.core.errors import ModelError
from visionkit.detection.decode import decode, detections, head_detections, sigmoid, softmax

ANCHORS = np.array([[0.1, 0.2], [0.4, 0.3]])


def test_one_cell_by_hand():
    raw = np.zeros((2, 3, 2, 7))  # 2 x 3 grid, 2 anchors, 2 classes
    raw[1, 2, 1] = [0.5, -1.0, 0.3, -0.2, 2.0, 1.0, -1.0]
    s = 1.2
    boxes, objectness, probs = decode(raw, ANCHORS, scale_x_y=s, class_activation="logistic")
    index = (1 * 3 + 2) * 2 + 1  # row 1, column 2, anchor 1
    cx = (sigmoid(0.5) * s - (s - 1) / 2 + 2) / 3
    cy = (sigmoid(-1.0) * s - (s - 1) / 2 + 1) / 2
    w, h = 0.4 * np.exp(0.3), 0.3 * np.exp(-0.2)
    np.testing.assert_allclose(boxes[index], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    np.testing.assert_allclose(objectness[index], sigmoid(2.0))
    np.testing.assert_allclose(probs[index], sigmoid(np.array([1.0, -1.0])))  # independent, not summing to 1


def test_scale_x_y_lets_centres_reach_the_cell_borders():
    """YOLOv4's grid-sensitivity fix: with s > 1 a finite t_x reaches the cell edge (s = 1 never does)."""
    raw = np.zeros((1, 1, 1, 6))

    def centre(t: float, s: float) -> float:
        raw[..., 0] = t
        box = decode(raw, ANCHORS[:1], scale_x_y=s)[0][0]
        return (box[0] + box[2]) / 2

    assert centre(-3.0, 1.2) <= 0.0 < 0.04 < centre(-3.0, 1.0)  # σ(-3) = 0.047
    assert centre(3.0, 1.0) < 0.96 < 1.0 <= centre(3.0, 1.2)
    assert centre(0.0, 1.2) == centre(0.0, 1.0) == 0.5


def test_defaults_are_the_yolov2_decode():
    raw = np.random.default_rng(0).normal(0, 2, (4, 4, 2, 8))
    boxes, objectness, probs = decode(raw, ANCHORS)
    np.testing.assert_allclose(probs, softmax(raw[..., 5:]).reshape(-1, 3))
    same = decode(raw, ANCHORS, scale_x_y=1.0, class_activation="softmax")
    for a, b in zip((boxes, objectness, probs), same):
        np.testing.assert_array_equal(a, b)


def test_heads_are_concatenated_in_order_and_scored_like_detections():
    rng = np.random.default_rng(1)
    coarse, fine = rng.normal(0, 2, (2, 2, 2, 9)), rng.normal(0, 2, (4, 4, 2, 9))
    heads = [{"anchors": ANCHORS * 2, "scale_x_y": 1.1}, {"anchors": ANCHORS}]
    boxes, scores, class_ids = head_detections([coarse, fine], heads)
    assert boxes.shape == (8 + 32, 4) and scores.shape == class_ids.shape == (40,)
    first = decode(coarse, ANCHORS * 2, 1.1, "logistic")
    np.testing.assert_allclose(boxes[:8], first[0])
    np.testing.assert_allclose(scores[:8], first[1] * first[2].max(axis=1))
    np.testing.assert_array_equal(class_ids[8:], decode(fine, ANCHORS, 1.0, "logistic")[2].argmax(axis=1))
    single = head_detections(fine, heads[1:])  # a one-head model's output comes unwrapped
    for a, b in zip(single, head_detections([fine], heads[1:])):
        np.testing.assert_array_equal(a, b)
    v2_boxes, v2_scores, _ = detections(fine, ANCHORS)
    np.testing.assert_allclose(boxes[8:], v2_boxes)
    assert not np.allclose(scores[8:], v2_scores)  # logistic vs softmax classes


@pytest.mark.parametrize("raws, heads, message", [
    ([np.zeros((2, 2, 2, 7))], [], "1 head outputs but metadata for 0 heads"),
    ([np.zeros((2, 2, 3, 7))], [{"anchors": ANCHORS}], "3 boxes per cell needs 3 anchors, received 2"),
])
def test_metadata_that_does_not_fit_the_output_is_refused(raws, heads, message):
    with pytest.raises(ModelError, match=message):
        head_detections(raws, heads)


def test_unknown_class_activation_is_refused():
    with pytest.raises(ModelError, match="class_activation must be one of"):
        decode(np.zeros((1, 1, 2, 7)), ANCHORS, class_activation="relu")
