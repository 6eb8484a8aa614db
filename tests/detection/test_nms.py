"""NMS: identical kept indices to tf.image.non_max_suppression and cv2.dnn.NMSBoxes on random boxes."""

from __future__ import annotations

import numpy as np
import pytest

from visionkit.core.errors import UsageError
from visionkit.detection.nms import batched_nms, nms, non_max_suppression


def random_boxes(rng, count, kind):
    if kind == "scattered":
        centres, sides = rng.uniform(0, 300, (count, 2)), rng.uniform(5, 80, (count, 2))
    else:  # a detector's raw output: crowds around a few objects
        objects, sizes = rng.uniform(20, 280, (4, 2)), rng.uniform(20, 100, (4, 2))
        which = rng.integers(0, 4, count)
        centres = objects[which] + rng.normal(0, 6, (count, 2))
        sides = sizes[which] * rng.uniform(0.8, 1.25, (count, 2))
    boxes = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1).astype(np.float32)
    return boxes, rng.permutation(count).astype(np.float32) / count + 0.001  # distinct scores: no ties


CASES = [(seed, kind, count, iou) for seed in range(6) for kind in ("scattered", "clustered")
         for count, iou in (((30, 0.3), (400, 0.5), (1500, 0.7))[seed % 3],)]


@pytest.mark.parametrize("seed,kind,count,iou", CASES)
def test_same_kept_indices_as_tensorflow_and_opencv(seed, kind, count, iou):
    import cv2
    import tensorflow as tf

    boxes, scores = random_boxes(np.random.default_rng(seed), count, kind)
    ours = nms(boxes, scores, iou)
    theirs = tf.image.non_max_suppression(boxes[:, [1, 0, 3, 2]], scores, count, iou).numpy()
    np.testing.assert_array_equal(ours, theirs)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    np.testing.assert_array_equal(ours, np.asarray(cv2.dnn.NMSBoxes(xywh, scores, 0.0, iou)).reshape(-1))


@pytest.mark.parametrize("seed", range(4))
def test_max_det_and_conf_match_tensorflow(seed):
    import tensorflow as tf

    boxes, scores = random_boxes(np.random.default_rng(seed), 300, "scattered")
    ours = non_max_suppression(boxes, scores, conf=0.4, iou=0.45, max_det=20)
    theirs = tf.image.non_max_suppression(boxes[:, [1, 0, 3, 2]], scores, 20, 0.45, score_threshold=0.4).numpy()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("seed", range(4))
def test_per_class_nms_matches_opencv_batched(seed):
    import cv2

    rng = np.random.default_rng(seed)
    boxes, scores = random_boxes(rng, 400, "clustered")
    class_ids = rng.integers(0, 3, len(boxes))
    ours = batched_nms(boxes, scores, class_ids, 0.5)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    theirs = np.asarray(cv2.dnn.NMSBoxesBatched(xywh, scores, class_ids, 0.0, 0.5)).reshape(-1)
    np.testing.assert_array_equal(np.sort(ours), np.sort(theirs))
    assert np.all(np.diff(scores[ours]) <= 0)  # best first


def test_per_class_equals_running_each_class_alone(rng):
    boxes, scores = random_boxes(rng, 300, "clustered")
    class_ids = rng.integers(0, 4, len(boxes))
    expected = []
    for cls in range(4):
        members = np.flatnonzero(class_ids == cls)
        expected.extend(members[nms(boxes[members], scores[members], 0.5)])
    np.testing.assert_array_equal(np.sort(batched_nms(boxes, scores, class_ids, 0.5)), np.sort(expected))


def test_hand_made_example():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # box 3 (0.95) suppresses its twin 0 and box 1 (IoU 81/119 = 0.68); box 2 is far away
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert nms(boxes, scores, 0.7).tolist() == [3, 1, 2]
    classes = np.array([0, 1, 0, 0])
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [3, 1, 2]
    assert non_max_suppression(boxes, scores, classes, conf=0.5, iou=0.5, classes=[1]).tolist() == [1]
    assert non_max_suppression(boxes, scores, classes, conf=0.5, iou=0.5, agnostic=True).tolist() == [3, 2]
    assert non_max_suppression(boxes, scores, classes, conf=0.92, iou=0.5).tolist() == [3]


def test_empty_and_bad_inputs():
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    assert non_max_suppression(np.zeros((0, 4)), np.zeros(0), np.zeros(0)).tolist() == []
    with pytest.raises(UsageError, match="3 boxes but 2 scores"):
        nms(np.zeros((3, 4)), np.zeros(2))
    with pytest.raises(UsageError, match=r"\(N, 4\)"):
        nms(np.zeros((3, 5)), np.zeros(3))
    with pytest.raises(UsageError, match="iou threshold"):
        nms(np.zeros((1, 4)), np.zeros(1), iou=1.5)
    with pytest.raises(UsageError, match="conf"):
        non_max_suppression(np.zeros((1, 4)), np.zeros(1), conf=-1)


def test_long_suppression_chain_matches_tensorflow():
    """A sliding window of boxes: each suppresses its next three neighbours, a chain hundreds deep."""
    import tensorflow as tf

    left = np.arange(600, dtype=np.float32)
    boxes = np.stack([left, np.zeros_like(left), left + 10, np.full_like(left, 10)], axis=1)
    scores = np.linspace(1, 0.1, len(left)).astype(np.float32)
    ours = nms(boxes, scores, 0.5)
    theirs = tf.image.non_max_suppression(boxes[:, [1, 0, 3, 2]], scores, len(left), 0.5).numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert ours.tolist() == list(range(0, 600, 4))
