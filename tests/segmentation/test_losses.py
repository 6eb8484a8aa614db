"""Segmentation losses against hand computation: ignore label, class weights, sigmoid = two-class softmax."""

from __future__ import annotations

import math

import numpy as np
import pytest

from visionkit.core.errors import UsageError
from visionkit.segmentation import losses as L

# One row of three pixels: true 0, true 1, ignored; predicted P(class 1) = 0.2, 0.6, 0.5.
TRUE = np.array([[[0, 1, 255]]])
P1 = np.array([0.2, 0.6, 0.5])
SOFTMAX = np.stack([1 - P1, P1], axis=-1)[None, None].astype("float32")  # (1, 1, 3, 2)
SIGMOID = P1[None, None, :, None].astype("float32")  # (1, 1, 3, 1)


def value(tensor) -> float:
    return float(np.asarray(tensor))


def test_cross_entropy_skips_ignored_pixels_and_weights_classes():
    assert value(L.cross_entropy(TRUE, SOFTMAX)) == pytest.approx((-math.log(0.8) - math.log(0.6)) / 2, rel=1e-5)
    weighted = (1 * -math.log(0.8) + 3 * -math.log(0.6)) / (1 + 3)
    assert value(L.cross_entropy(TRUE, SOFTMAX, class_weights=[1, 3])) == pytest.approx(weighted, rel=1e-5)


def test_sigmoid_head_equals_two_class_softmax():
    for loss in (L.cross_entropy, L.dice_loss, L.focal_loss):
        assert value(loss(TRUE, SIGMOID)) == pytest.approx(value(loss(TRUE, SOFTMAX)), rel=1e-5)


def test_focal_loss_by_hand_and_gamma_zero_is_cross_entropy():
    by_hand = (0.2 ** 2 * -math.log(0.8) + 0.4 ** 2 * -math.log(0.6)) / 2
    assert value(L.focal_loss(TRUE, SOFTMAX, gamma=2.0)) == pytest.approx(by_hand, rel=1e-5)
    assert value(L.focal_loss(TRUE, SOFTMAX, gamma=0.0)) == pytest.approx(value(L.cross_entropy(TRUE, SOFTMAX)), rel=1e-5)


def test_dice_by_hand_without_smoothing():
    # kept pixels only: class 0: intersection 0.8, sum p 0.8 + 0.4, sum y 1; class 1: 0.6, 0.2 + 0.6, 1
    dice0, dice1 = 2 * 0.8 / (1.2 + 1), 2 * 0.6 / (0.8 + 1)
    assert value(L.dice_loss(TRUE, SOFTMAX, smooth=0.0)) == pytest.approx(1 - (dice0 + dice1) / 2, rel=1e-5)
    assert value(L.dice_loss(TRUE, SOFTMAX, class_weights=[0, 1], smooth=0.0)) == pytest.approx(1 - dice1, rel=1e-5)


def test_ignored_pixel_changes_nothing_whatever_its_prediction():
    other = SOFTMAX.copy()
    other[0, 0, 2] = [0.999, 0.001]
    for loss in (L.cross_entropy, L.dice_loss, L.focal_loss):
        assert value(loss(TRUE, other)) == pytest.approx(value(loss(TRUE, SOFTMAX)), rel=1e-6)


def test_perfect_prediction_has_near_zero_loss_and_sum_adds_terms():
    truth = np.array([[[0, 1, 1]]])
    perfect = np.eye(2, dtype="float32")[truth]
    combined = L.SegmentationLoss("ce+dice")
    assert value(combined(truth, perfect)) < 1e-4
    expected = value(L.cross_entropy(TRUE, SOFTMAX)) + value(L.dice_loss(TRUE, SOFTMAX))
    assert value(combined(TRUE[..., None], SOFTMAX)) == pytest.approx(expected, rel=1e-5)  # (B, H, W, 1) labels too
    assert combined.get_config()["loss"] == "ce+dice"


def test_unknown_loss_term():
    assert L.parse_loss(" CE + focal ") == ("ce", "focal")
    with pytest.raises(UsageError, match="lovasz"):
        L.parse_loss("ce+lovasz")
