"""Face-verification maths: squared L2 distances, the triplet loss with online semi-hard mining, ROC/EER.

FaceNet (Schroff et al. 2015): d(x1, x2) = ‖f(x1) − f(x2)‖² on L2-normalised encodings (so d ∈ [0, 4]);
"same person" iff d ≤ τ. The triplet loss (§3, eq. 1–2) is max(d(A, P) − d(A, N) + α, 0). Triplets are mined
online inside each mini-batch (§3.2): every anchor-positive pair is used, with a *semi-hard* negative — the
closest negative that is still farther than the positive, d(A, P) < d(A, N) (eq. 4). When an anchor has no
such negative, the least-hard negative (largest d(A, N)) is used instead, so that the loss never drives all
encodings to one point (the collapse FaceNet warns about).

The TF functions are what training uses; the NumPy ones are plain references for tests and evaluation.
ROC/AUC come from scikit-learn; EER and the thresholds are read off its ROC curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SQUARED_DISTANCE = 4.0  # ‖a − b‖² for unit vectors lies in [0, 4]


# --- NumPy ----------------------------------------------------------------------------------------------------


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All squared L2 distances between rows of ``a`` (m, d) and ``b`` (n, d) as an (m, n) array.

    ‖a‖² + ‖b‖² − 2·a·bᵀ: one matrix product, clipped at 0 against rounding.
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float32))
    b = np.atleast_2d(np.asarray(b, dtype=np.float32))
    sq_a = np.einsum("ij,ij->i", a, a)[:, None]
    sq_b = np.einsum("ij,ij->i", b, b)[None, :]
    return np.maximum(sq_a + sq_b - 2.0 * (a @ b.T), 0.0)


def pair_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise squared distances ‖a_i − b_i‖² of two (n, d) arrays."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return np.einsum("ij,ij->i", diff, diff)


def triplet_loss(anchor: np.ndarray, positive: np.ndarray, negative: np.ndarray, margin: float = 0.2) -> np.ndarray:
    """Per-triplet FaceNet loss max(‖a − p‖² − ‖a − n‖² + α, 0) (Schroff et al. 2015, eq. 2)."""
    return np.maximum(pair_distances(anchor, positive) - pair_distances(anchor, negative) + margin, 0.0)


def semi_hard_triplets(labels: np.ndarray, embeddings: np.ndarray) -> list[tuple[int, int, int]]:
    """The (anchor, positive, negative) index triplets that online semi-hard mining picks in one batch.

    Reference implementation with loops (tests compare the TF loss with it): for every anchor-positive pair,
    the negative with the smallest d(A, N) > d(A, P); if there is none, the negative with the largest d(A, N).
    Anchors with no positive or no negative in the batch contribute nothing.
    """
    labels = np.asarray(labels).reshape(-1)
    distances = squared_distances(embeddings, embeddings)
    triplets = []
    for a in range(len(labels)):
        negatives = np.flatnonzero(labels != labels[a])
        if negatives.size == 0:
            continue
        for p in np.flatnonzero(labels == labels[a]):
            if p == a:
                continue
            d_ap = distances[a, p]
            farther = negatives[distances[a, negatives] > d_ap]
            if farther.size:
                n = farther[np.argmin(distances[a, farther])]
            else:
                n = negatives[np.argmax(distances[a, negatives])]
            triplets.append((a, int(p), int(n)))
    return triplets


# --- TensorFlow (training) ------------------------------------------------------------------------------------


def pairwise_squared_distances_tf(embeddings):
    """(B, B) squared L2 distances of a batch of encodings, in TF (differentiable, clipped at 0)."""
    import tensorflow as tf

    dot = tf.matmul(embeddings, embeddings, transpose_b=True)
    squared = tf.linalg.diag_part(dot)
    return tf.maximum(squared[:, None] - 2.0 * dot + squared[None, :], 0.0)


def mined_triplet_terms(labels, embeddings, margin: float = 0.2):
    """Per anchor-positive pair: the semi-hard-mined hinge value, and a mask of the pairs that count.

    Returns ``(hinge (B, B), valid (B, B) float)``; row = anchor, column = positive.
    """
    import tensorflow as tf

    labels = tf.reshape(labels, [-1])
    embeddings = tf.cast(embeddings, tf.float32)
    distances = pairwise_squared_distances_tf(embeddings)
    same = tf.equal(labels[:, None], labels[None, :])
    not_self = tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool))
    positive_pairs = tf.logical_and(same, not_self)
    negatives = tf.logical_not(same)

    d_ap = distances[:, :, None]  # (anchor, positive, 1)
    d_an = distances[:, None, :]  # (anchor, 1, negative)
    semi_hard = tf.logical_and(negatives[:, None, :], d_an > d_ap)
    ceiling = tf.reduce_max(distances) + 1.0
    closest_farther = tf.reduce_min(tf.where(semi_hard, d_an, ceiling), axis=2)
    has_semi_hard = tf.reduce_any(semi_hard, axis=2)
    farthest_negative = tf.reduce_max(tf.where(negatives, distances, 0.0), axis=1)  # least hard, per anchor
    chosen = tf.where(has_semi_hard, closest_farther, farthest_negative[:, None])
    hinge = tf.maximum(distances - chosen + margin, 0.0)
    has_negative = tf.reduce_any(negatives, axis=1)[:, None]
    valid = tf.cast(tf.logical_and(positive_pairs, has_negative), tf.float32)
    return hinge, valid


def semi_hard_triplet_loss(labels, embeddings, margin: float = 0.2):
    """Mean triplet loss over all anchor-positive pairs of the batch, negatives mined semi-hard (TF scalar)."""
    import tensorflow as tf

    hinge, valid = mined_triplet_terms(labels, embeddings, margin)
    return tf.reduce_sum(hinge * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)


def active_triplet_fraction(labels, embeddings, margin: float = 0.2):
    """Share of mined triplets with a non-zero loss (how much the batch still teaches; TF scalar)."""
    import tensorflow as tf

    hinge, valid = mined_triplet_terms(labels, embeddings, margin)
    active = tf.cast(hinge > 0.0, tf.float32) * valid
    return tf.reduce_sum(active) / tf.maximum(tf.reduce_sum(valid), 1.0)


# --- ROC, EER, thresholds (scikit-learn) ----------------------------------------------------------------------


@dataclass(frozen=True)
class RocSummary:
    """Verification quality of squared distances against same/different labels ("same" iff d ≤ τ)."""

    auc: float
    eer: float
    threshold_eer: float
    target_far: float
    threshold_far: float
    tar_at_far: float
    far_at_far: float
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray  # distance thresholds, increasing, one per ROC point


def roc_summary(distances: np.ndarray, same: np.ndarray, target_far: float = 1e-3) -> RocSummary:
    """ROC AUC, equal error rate and the thresholds at the EER and at a target false-accept rate.

    The score is −d, so scikit-learn's ROC points map to "accept iff d ≤ τ". EER is read at the ROC point where
    the false-accept and false-reject rates are closest (their mean). The FAR threshold is the largest τ whose
    false-accept rate on these pairs is ≤ ``target_far``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    distances = np.asarray(distances, dtype=np.float64).reshape(-1)
    same = np.asarray(same).astype(bool).reshape(-1)
    if distances.shape != same.shape or distances.size == 0:
        raise ValueError(f"need as many labels as distances (> 0), received {distances.size} and {same.size}")
    if same.all() or not same.any():
        raise ValueError("need both same-person and different-person pairs to compute a ROC curve")
    fpr, tpr, scores = roc_curve(same, -distances, drop_intermediate=False)
    thresholds = -scores
    below = np.nextafter(distances.min(), -np.inf)
    thresholds[~np.isfinite(thresholds)] = below  # sklearn's first point (accept nothing)
    fnr = 1.0 - tpr
    i = int(np.argmin(np.abs(fnr - fpr)))
    j = int(np.flatnonzero(fpr <= target_far)[-1])
    return RocSummary(
        auc=float(roc_auc_score(same, -distances)), eer=float((fpr[i] + fnr[i]) / 2), threshold_eer=float(thresholds[i]),
        target_far=float(target_far), threshold_far=float(thresholds[j]), tar_at_far=float(tpr[j]),
        far_at_far=float(fpr[j]), fpr=fpr, tpr=tpr, thresholds=thresholds,
    )


def accuracy_at(distances: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Share of pairs decided right by "same iff d ≤ τ"."""
    distances = np.asarray(distances, dtype=np.float64)
    return float(np.mean((distances <= threshold) == np.asarray(same).astype(bool)))


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float if it is a usable squared distance of unit vectors, else ValueError."""
    value = float(threshold)
    if not (0.0 <= value <= MAX_SQUARED_DISTANCE):
        raise ValueError(f"threshold must lie in [0, {MAX_SQUARED_DISTANCE:g}] (squared distance of L2-normalised "
                         f"encodings), received {threshold!r}")
    return value


__all__ = [
    "squared_distances", "pair_distances", "triplet_loss", "semi_hard_triplets", "pairwise_squared_distances_tf",
    "mined_triplet_terms", "semi_hard_triplet_loss", "active_triplet_fraction", "RocSummary", "roc_summary",
    "accuracy_at", "check_threshold", "MAX_SQUARED_DISTANCE",
]
