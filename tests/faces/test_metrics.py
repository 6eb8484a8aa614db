"""Face metrics: distances, triplet loss, semi-hard mining and ROC/EER, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from visionkit.faces import metrics as fm

# 1-D encodings, labels [0, 0, 1, 1] at positions 0, 1, 1.5, 3. Squared distances:
# d01 = 1, d02 = 2.25, d03 = 9, d12 = 0.25, d13 = 4, d23 = 2.25.
LABELS = np.array([0, 0, 1, 1])
POINTS = np.array([[0.0], [1.0], [1.5], [3.0]])


def test_squared_distances_by_hand():
    a = np.array([[0.0, 0.0], [1.0, 0.0]])
    b = np.array([[0.0, 1.0], [3.0, 4.0]])
    np.testing.assert_allclose(fm.squared_distances(a, b), [[1.0, 25.0], [2.0, 20.0]])
    np.testing.assert_allclose(fm.pair_distances(a, b), [1.0, 20.0])


def test_squared_distances_never_negative(rng):
    x = rng.normal(size=(50, 16)).astype(np.float32)
    d = fm.squared_distances(x, x)
    assert (d >= 0).all()
    np.testing.assert_allclose(np.diag(d), 0.0, atol=1e-4)


def test_triplet_loss_by_hand():
    anchor = np.array([[0.0, 0.0]] * 3)
    positive = np.array([[1.0, 0.0]] * 3)
    negative = np.array([[0.0, 2.0], [0.0, 1.0], [0.5, 0.0]])  # d(A,N) = 4, 1, 0.25; d(A,P) = 1
    np.testing.assert_allclose(fm.triplet_loss(anchor, positive, negative, margin=0.2), [0.0, 0.2, 0.95])


def test_semi_hard_triplets_by_hand():
    # (0,1): d_ap 1, negatives 2 (2.25) and 3 (9) are farther: closest is 2.
    # (1,0): d_ap 1, negative 2 (0.25) is nearer, 3 (4) farther: 3.
    # (2,3): d_ap 2.25, no negative strictly farther (0: 2.25, 1: 0.25): fall back to the farthest, 0.
    # (3,2): d_ap 2.25, negatives 0 (9) and 1 (4) farther: closest is 1.
    assert fm.semi_hard_triplets(LABELS, POINTS) == [(0, 1, 2), (1, 0, 3), (2, 3, 0), (3, 2, 1)]


@pytest.mark.parametrize("margin, expected_loss, expected_active", [
    (0.2, (0 + 0 + 0.2 + 0) / 4, 1 / 4),
    (2.0, (0.75 + 0 + 2.0 + 0.25) / 4, 3 / 4),  # 1-2.25+2, 1-4+2<0, 2.25-2.25+2, 2.25-4+2
])
def test_tf_semi_hard_loss_by_hand(margin, expected_loss, expected_active):
    loss = float(fm.semi_hard_triplet_loss(LABELS, POINTS.astype(np.float32), margin))
    active = float(fm.active_triplet_fraction(LABELS, POINTS.astype(np.float32), margin))
    assert loss == pytest.approx(expected_loss, abs=1e-6)
    assert active == pytest.approx(expected_active, abs=1e-6)


def test_tf_loss_matches_the_reference_mining(rng):
    labels = np.repeat(np.arange(4), 3)
    x = rng.normal(size=(12, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    triplets = np.array(fm.semi_hard_triplets(labels, x))
    reference = fm.triplet_loss(x[triplets[:, 0]], x[triplets[:, 1]], x[triplets[:, 2]], 0.3).mean()
    assert float(fm.semi_hard_triplet_loss(labels, x.astype(np.float32), 0.3)) == pytest.approx(reference, abs=1e-5)


def test_anchor_without_positive_or_negative_counts_for_nothing():
    # label 2 has one image (no positive); the lone pair of label 0 uses label 1 as negatives.
    labels = np.array([0, 0, 1, 2])
    points = np.array([[0.0], [1.0], [0.5], [9.0]], dtype=np.float32)
    # (0,1): d_ap 1, negatives 2 (0.25) and 3 (81): closest farther is 81 -> 0. (1,0): negatives 0.25, 64 -> 0.
    assert fm.semi_hard_triplets(labels, points) == [(0, 1, 3), (1, 0, 3)]
    assert float(fm.semi_hard_triplet_loss(labels, points, 0.2)) == 0.0
    single = np.array([0, 0])  # no negatives at all: nothing to learn, and no NaN
    assert float(fm.semi_hard_triplet_loss(single, points[:2], 0.2)) == 0.0


def test_tf_loss_has_finite_gradients(rng):
    import tensorflow as tf

    labels = tf.constant(np.repeat(np.arange(3), 2))
    x = tf.Variable(rng.normal(size=(6, 4)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = fm.semi_hard_triplet_loss(labels, tf.math.l2_normalize(x, axis=1), 1.0)
    gradient = tape.gradient(loss, x).numpy()
    assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0


def test_roc_summary_perfect_separation():
    summary = fm.roc_summary(np.array([0.1, 0.2, 0.3, 0.4]), np.array([1, 1, 0, 0]))
    assert summary.auc == 1.0 and summary.eer == 0.0
    assert summary.threshold_eer == pytest.approx(0.2)
    assert summary.threshold_far == pytest.approx(0.2) and summary.tar_at_far == 1.0
    assert fm.accuracy_at([0.1, 0.2, 0.3, 0.4], [1, 1, 0, 0], summary.threshold_eer) == 1.0


def test_roc_summary_by_hand():
    # positives at d 0.1 and 0.3, negatives at 0.2 and 0.4: 3 of 4 (pos, neg) orders right -> AUC 0.75.
    # τ = 0.2 accepts one positive and one negative: FAR = FRR = 0.5. τ = 0.1 is the last with FAR 0.
    summary = fm.roc_summary(np.array([0.1, 0.3, 0.2, 0.4]), np.array([1, 1, 0, 0]), target_far=0.001)
    assert summary.auc == pytest.approx(0.75)
    assert summary.eer == pytest.approx(0.5)
    assert summary.threshold_eer == pytest.approx(0.2)
    assert summary.threshold_far == pytest.approx(0.1)
    assert summary.tar_at_far == pytest.approx(0.5)
    assert fm.accuracy_at([0.1, 0.3, 0.2, 0.4], [1, 1, 0, 0], 0.2) == pytest.approx(0.5)


def test_roc_summary_needs_both_classes():
    with pytest.raises(ValueError, match="both"):
        fm.roc_summary(np.array([0.1, 0.2]), np.array([1, 1]))


@pytest.mark.parametrize("value", [-0.01, 4.0001, math.nan, math.inf])
def test_threshold_outside_0_4_is_refused(value):
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        fm.check_threshold(value)


def test_threshold_bounds_are_accepted():
    assert fm.check_threshold(0) == 0.0 and fm.check_threshold(4) == 4.0
