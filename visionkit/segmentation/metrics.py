"""Semantic-segmentation scores from a confusion matrix (pure numpy).

Scores over a data set are computed from ONE confusion matrix accumulated over all its pixels
("pooled", as in the PASCAL VOC and Cityscapes benchmarks: Everingham et al. 2015, section 4.2;
Cordts et al. 2016, section 3.2), not as an average of per-image scores; :func:`mean_of_image_scores`
gives the per-image average too, because the two differ when objects vary in size.

Rows of the matrix are the true class, columns the predicted class. Pixels whose true label is the
ignore label are left out of the matrix, so they count neither as errors nor as hits.
"""

from __future__ import annotations

import warnings
from typing import Iterable, Sequence

import numpy as np

#: The class id that marks pixels to leave out of losses and metrics (the PASCAL VOC "void" value).
IGNORE_INDEX = 255


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int,
                     ignore_index: int | None = IGNORE_INDEX) -> np.ndarray:
    """Counts ``matrix[t, p]`` of pixels with true class ``t`` predicted as ``p`` (int64, C x C).

    Pixels whose true label is ``ignore_index`` are skipped. Any other label or prediction outside
    ``0 .. num_classes - 1`` raises ``ValueError`` rather than being silently dropped.
    """
    y_true = np.asarray(y_true).ravel().astype(np.int64)
    y_pred = np.asarray(y_pred).ravel().astype(np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"labels and predictions differ in size: {y_true.size} vs {y_pred.size} pixels")
    if ignore_index is not None:
        keep = y_true != ignore_index
        y_true, y_pred = y_true[keep], y_pred[keep]
    for name, values in (("label", y_true), ("prediction", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            bad = values[(values < 0) | (values >= num_classes)][0]
            raise ValueError(f"{name} value {bad} is outside the {num_classes} classes 0..{num_classes - 1}")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (class absent from labels and predictions)."""
    numerator = numerator.astype(np.float64)
    denominator = denominator.astype(np.float64)
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def class_iou(matrix: np.ndarray) -> np.ndarray:
    """Per-class intersection over union TP / (TP + FP + FN) (Jaccard index); NaN for absent classes."""
    matrix = np.asarray(matrix)
    tp = np.diag(matrix)
    return _ratio(tp, matrix.sum(axis=0) + matrix.sum(axis=1) - tp)


def class_dice(matrix: np.ndarray) -> np.ndarray:
    """Per-class Dice coefficient (F1) 2 TP / (2 TP + FP + FN) (Dice 1945); NaN for absent classes."""
    matrix = np.asarray(matrix)
    tp = np.diag(matrix)
    return _ratio(2 * tp, matrix.sum(axis=0) + matrix.sum(axis=1))


def mean_iou(matrix: np.ndarray) -> float:
    """Mean of the per-class IoU over the classes that occur in labels or predictions."""
    values = class_iou(matrix)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def pixel_accuracy(matrix: np.ndarray) -> float:
    """Fraction of (non-ignored) pixels labelled correctly."""
    matrix = np.asarray(matrix)
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else float("nan")


def class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Per-class recall TP / (TP + FN); NaN for classes with no true pixels."""
    matrix = np.asarray(matrix)
    return _ratio(np.diag(matrix), matrix.sum(axis=1))


def _clean(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def summarize(matrix: np.ndarray, class_names: Sequence[str]) -> dict:
    """All pooled scores of one confusion matrix as a JSON-ready dict (NaN written as null)."""
    matrix = np.asarray(matrix)
    iou, dice, recall = class_iou(matrix), class_dice(matrix), class_accuracy(matrix)
    classes = {
        name: {"iou": _clean(iou[i]), "dice": _clean(dice[i]), "accuracy": _clean(recall[i]),
               "pixels": int(matrix[i].sum()), "predicted_pixels": int(matrix[:, i].sum())}
        for i, name in enumerate(class_names)
    }
    return {
        "mean_iou": _clean(mean_iou(matrix)),
        "mean_dice": _clean(float(np.nanmean(dice)) if np.isfinite(dice).any() else float("nan")),
        "pixel_accuracy": _clean(pixel_accuracy(matrix)),
        "classes": classes,
        "confusion_matrix": matrix.astype(int).tolist(),
    }


def mean_of_image_scores(matrices: Iterable[np.ndarray]) -> dict:
    """Per-image mIoU, pixel accuracy and per-class IoU, averaged over images (classes absent from an image skipped)."""
    matrices = [np.asarray(m) for m in matrices]
    if not matrices:
        return {"images": 0, "mean_iou": None, "pixel_accuracy": None, "class_iou": []}
    ious = np.array([class_iou(m) for m in matrices])
    with warnings.catch_warnings():  # a class absent from every image: nanmean of nothing is NaN -> null
        warnings.simplefilter("ignore", RuntimeWarning)
        per_class = [_clean(v) for v in np.nanmean(ious, axis=0)]
    image_miou = [mean_iou(m) for m in matrices]
    image_acc = [pixel_accuracy(m) for m in matrices]
    return {
        "images": len(matrices),
        "mean_iou": _clean(np.nanmean(image_miou)) if np.isfinite(image_miou).any() else None,
        "pixel_accuracy": _clean(np.nanmean(image_acc)) if np.isfinite(image_acc).any() else None,
        "class_iou": per_class,
    }
