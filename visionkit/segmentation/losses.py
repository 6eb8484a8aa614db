"""Per-pixel segmentation losses with class weights and an ignore label (keras.ops, any backend).

``y_true`` holds class ids, shape (B, H, W) or (B, H, W, 1); pixels equal to ``ignore_index`` add
nothing to the loss. ``y_pred`` holds probabilities: (B, H, W, C) from a softmax head, or (B, H, W, 1)
from a sigmoid head (read as the probability of class 1 of two). Keras' built-in losses cannot skip
an ignore label inside one image, which is why these are written out here.

- cross-entropy: -sum_c w_c y_c log p_c, averaged over the kept pixels with the weights as denominator
  (the usual weighted mean, e.g. Long et al. 2015 / PyTorch ``CrossEntropyLoss(weight=…)``);
- focal: -w_c (1 - p_t)^gamma log p_t (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, eq. 5);
- Dice: 1 - soft Dice per class, 2 sum(p y) / (sum p + sum y), pooled over the batch (Milletari et al.,
  "V-Net", 3DV 2016, eq. 1, without the squares), averaged over classes with the class weights.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from visionkit.core.errors import UsageError
from visionkit.segmentation.metrics import IGNORE_INDEX

TERMS = ("ce", "dice", "focal")
EPSILON = 1e-7


def parse_loss(text: str) -> tuple[str, ...]:
    """``"ce+dice"`` -> ``("ce", "dice")``; a UsageError names an unknown term."""
    terms = tuple(part.strip().lower() for part in str(text).split("+") if part.strip())
    unknown = [t for t in terms if t not in TERMS]
    if not terms or unknown:
        raise UsageError(f"unknown loss {text!r}; use one of {', '.join(TERMS)} or a sum such as 'ce+dice'")
    return terms


def _prepare(y_true, y_pred, ignore_index):
    """(probabilities (B,H,W,C), one-hot labels (B,H,W,C), kept-pixel mask (B,H,W)) with C >= 2."""
    y_pred = ops.cast(y_pred, "float32")
    if y_pred.shape[-1] == 1:  # sigmoid head: P(class 1) -> [P(0), P(1)]
        y_pred = ops.concatenate([1.0 - y_pred, y_pred], axis=-1)
    labels = ops.cast(y_true, "int32")
    if len(labels.shape) == 4:
        labels = ops.squeeze(labels, axis=-1)
    kept = ops.not_equal(labels, ignore_index) if ignore_index is not None else ops.ones_like(labels, dtype="bool")
    labels = ops.where(kept, labels, ops.zeros_like(labels))
    one_hot = ops.one_hot(labels, y_pred.shape[-1], dtype="float32")
    return ops.clip(y_pred, EPSILON, 1.0 - EPSILON), one_hot, ops.cast(kept, "float32")


def _pixel_weights(one_hot, class_weights):
    if class_weights is None:
        return ops.ones(ops.shape(one_hot)[:-1], dtype="float32")
    return ops.sum(one_hot * ops.convert_to_tensor(class_weights, dtype="float32"), axis=-1)


def _weighted_mean(values, weights):
    return ops.sum(values * weights) / ops.maximum(ops.sum(weights), EPSILON)


def cross_entropy(y_true, y_pred, class_weights: Sequence[float] | None = None, ignore_index: int | None = IGNORE_INDEX):
    """Weighted mean cross-entropy over the kept pixels (a scalar)."""
    probs, one_hot, kept = _prepare(y_true, y_pred, ignore_index)
    per_pixel = -ops.sum(one_hot * ops.log(probs), axis=-1)
    return _weighted_mean(per_pixel, kept * _pixel_weights(one_hot, class_weights))


def focal_loss(y_true, y_pred, gamma: float = 2.0, class_weights: Sequence[float] | None = None,
               ignore_index: int | None = IGNORE_INDEX):
    """Focal loss, summed over the kept pixels and divided by their (weighted) count; gamma=0 is cross-entropy."""
    probs, one_hot, kept = _prepare(y_true, y_pred, ignore_index)
    p_true = ops.sum(one_hot * probs, axis=-1)
    per_pixel = -ops.power(1.0 - p_true, gamma) * ops.log(p_true)
    return _weighted_mean(per_pixel, kept * _pixel_weights(one_hot, class_weights))


def dice_loss(y_true, y_pred, class_weights: Sequence[float] | None = None, ignore_index: int | None = IGNORE_INDEX,
              smooth: float = 1.0):
    """1 - class-weighted mean soft Dice over the batch; ``smooth`` keeps absent classes at Dice 1."""
    probs, one_hot, kept = _prepare(y_true, y_pred, ignore_index)
    kept = kept[..., None]
    axes = tuple(range(len(probs.shape) - 1))
    intersection = ops.sum(probs * one_hot * kept, axis=axes)
    total = ops.sum((probs + one_hot) * kept, axis=axes)
    dice = (2.0 * intersection + smooth) / (total + smooth)
    weights = ops.ones_like(dice) if class_weights is None else ops.convert_to_tensor(class_weights, dtype="float32")
    return 1.0 - ops.sum(dice * weights) / ops.sum(weights)


@keras.saving.register_keras_serializable(package="visionkit")
class SegmentationLoss(keras.losses.Loss):
    """A sum of the terms in ``loss`` ("ce", "dice", "focal", e.g. "ce+dice"), sharing weights and ignore label."""

    def __init__(self, loss: str = "ce", class_weights: Sequence[float] | None = None,
                 ignore_index: int | None = IGNORE_INDEX, gamma: float = 2.0, name: str | None = None, **kwargs):
        self.terms = parse_loss(loss)
        super().__init__(name=name or "_plus_".join(self.terms), **kwargs)  # TF scope names allow no "+"
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.ignore_index = ignore_index
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        total = 0.0
        for term in self.terms:
            if term == "ce":
                total = total + cross_entropy(y_true, y_pred, self.class_weights, self.ignore_index)
            elif term == "focal":
                total = total + focal_loss(y_true, y_pred, self.gamma, self.class_weights, self.ignore_index)
            else:
                total = total + dice_loss(y_true, y_pred, self.class_weights, self.ignore_index)
        return total

    def get_config(self):
        return {"loss": "+".join(self.terms), "class_weights": self.class_weights, "ignore_index": self.ignore_index,
                "gamma": self.gamma, "name": self.name}
