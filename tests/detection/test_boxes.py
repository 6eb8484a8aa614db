"""Box maths: format conversions (checked against keras.utils.bounding_boxes), pairwise IoU, letterboxing."""

from __future__ import annotations

import numpy as np
import pytest

from visionkit.core.errors import UsageError
from visionkit.detection.boxes import (FORMATS, clip_boxes, convert_format, letterbox, letterbox_geometry, pairwise_iou,
                                 wh_iou)


def random_xyxy(rng, count, size=100.0):
    corner = rng.uniform(0, size, (count, 2))
    return np.concatenate([corner, corner + rng.uniform(1, size / 2, (count, 2))], axis=1)


def test_iou_hand_computed():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 5, 10]])
    # overlap 5x5 = 25, union 100 + 100 - 25 = 175; identical; disjoint; half contained: 50 / 100
    np.testing.assert_allclose(pairwise_iou(a, b), [[25 / 175, 1.0, 0.0, 0.5]])


def test_iou_is_symmetric_bounded_and_one_on_the_diagonal(rng):
    boxes = random_xyxy(rng, 50)
    iou = pairwise_iou(boxes, boxes)
    assert iou.shape == (50, 50)
    np.testing.assert_allclose(iou, iou.T)
    np.testing.assert_allclose(np.diag(iou), 1.0)
    assert iou.min() >= 0 and iou.max() <= 1 + 1e-12


def test_iou_of_degenerate_boxes_is_zero_not_nan():
    point = np.array([[3, 3, 3, 3]])
    assert pairwise_iou(point, point)[0, 0] == 0.0


def test_iou_matches_keras(rng):
    from keras.utils import bounding_boxes

    a, b = random_xyxy(rng, 7), random_xyxy(rng, 9)
    expected = np.asarray(bounding_boxes.compute_iou(a.astype("float32"), b.astype("float32"), "xyxy"))
    np.testing.assert_allclose(pairwise_iou(a, b), expected, atol=1e-5)


@pytest.mark.parametrize("target", FORMATS)
def test_conversions_match_keras_and_round_trip(rng, target):
    from keras.utils import bounding_boxes

    boxes = random_xyxy(rng, 12).astype("float32")
    ours = convert_format(boxes, "xyxy", target, height=120, width=160)
    theirs = np.asarray(bounding_boxes.convert_format(boxes, "xyxy", target, height=120, width=160))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(convert_format(ours, target, "xyxy", height=120, width=160), boxes, rtol=1e-5, atol=1e-4)


def test_conversion_errors_say_what_was_wrong():
    with pytest.raises(UsageError, match="unknown box format 'xy'"):
        convert_format(np.zeros((1, 4)), "xy", "xyxy")
    with pytest.raises(UsageError, match="needs the image height and width"):
        convert_format(np.zeros((1, 4)), "xyxy", "rel_xyxy")
    with pytest.raises(UsageError, match=r"\(\.\.\., 4\)"):
        convert_format(np.zeros((1, 3)), "xyxy", "xywh")


def test_wh_iou_is_iou_of_corner_aligned_boxes(rng):
    sizes_a, sizes_b = rng.uniform(1, 50, (5, 2)), rng.uniform(1, 50, (6, 2))
    as_boxes = lambda s: np.concatenate([np.zeros_like(s), s], axis=1)  # noqa: E731
    np.testing.assert_allclose(wh_iou(sizes_a, sizes_b), pairwise_iou(as_boxes(sizes_a), as_boxes(sizes_b)))


def test_clip_boxes():
    np.testing.assert_array_equal(clip_boxes([[-5, 2, 50, 70]], height=60, width=40), [[0, 2, 40, 60]])


def test_letterbox_keeps_aspect_and_centres():
    image = np.full((100, 200, 3), 255, np.uint8)
    canvas, geometry = letterbox(image, (64, 64))
    assert canvas.shape == (64, 64, 3)
    assert geometry.scale == pytest.approx(0.32) and geometry.pad_top == 16 and geometry.pad_left == 0
    assert (canvas[:16] == 114).all() and (canvas[16:48] == 255).all() and (canvas[48:] == 114).all()


def test_letterbox_round_trip_maps_boxes_back_to_original_pixels(rng):
    geometry = letterbox_geometry(375, 500, (320, 320))
    boxes = np.array([[10.0, 20.0, 300.0, 200.0], [0.0, 0.0, 500.0, 375.0]])
    np.testing.assert_allclose(geometry.to_original(geometry.to_canvas(boxes)), boxes, atol=1e-9)
    # a box reaching into the grey padding is clipped to the photo
    outside = geometry.to_original([[-10.0, -10.0, 330.0, 330.0]])
    np.testing.assert_allclose(outside, [[0, 0, 500, 375]])


def test_letterbox_rejects_empty_images():
    with pytest.raises(UsageError, match="0x10"):
        letterbox_geometry(0, 10, (32, 32))
