"""Average precision for detection: AP per class at an IoU threshold, mAP@0.5 and COCO-style mAP@0.5:0.95.

How it is computed (and how it differs from the two reference tools):

1. Matching, per class and image: detections are visited from the highest score down; each is a true positive
   when some still-unmatched ground-truth box of its class overlaps it with IoU >= the threshold (the one of
   highest IoU is taken and marked used), else a false positive (COCO's rule; VOC's ``>`` differs only at exact
   ties).
2. Over the whole data set, detections are sorted by score and cumulative precision and recall are computed.
3. **All-point interpolation** (PASCAL VOC 2010+, Everingham et al. 2015 §3.4.1): the precision at recall r is
   replaced by the highest precision at any recall >= r, and AP is the exact area under that step curve,
   ``AP = Σ (r_k - r_{k-1}) · p_interp(r_k)``. (COCO's own tool samples 101 recall points instead, which
   gives values within about 0.01 of this.)
4. A class with no ground truth is left out of the mean (its AP is ``nan``); a class with ground truth and no
   detections has AP 0. mAP@0.5:0.95 is the mean over the ten thresholds 0.50, 0.55, …, 0.95 of the mAP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from visionkit.detection.boxes import pairwise_iou

COCO_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2))


def match_image(boxes, scores, truth, iou_threshold: float) -> np.ndarray:
    """True-positive flags for one image and class, for detections in the order given by decreasing ``scores``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = np.zeros(len(boxes), dtype=bool)
    if len(truth) == 0 or len(boxes) == 0:
        return hits
    overlaps = pairwise_iou(boxes, truth)
    used = np.zeros(len(truth), dtype=bool)
    for rank, index in enumerate(order):
        candidates = np.where(used, -1.0, overlaps[index])
        best = int(candidates.argmax())
        if candidates[best] >= iou_threshold:
            used[best] = True
            hits[rank] = True
    return hits


def average_precision(recall, precision) -> float:
    """Area under the all-point interpolated precision-recall curve (see the module docstring, step 3)."""
    recall = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64)])
    precision = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64)])
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * envelope[steps]))


def pr_curve(scores, hits, positives: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (recall, precision) over detections sorted by decreasing score."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = np.asarray(hits, dtype=np.float64)[order]
    true_positives = np.cumsum(hits)
    precision = true_positives / np.arange(1, len(hits) + 1)
    recall = true_positives / max(positives, 1)
    return recall, precision


@dataclass
class DetectionMetrics:
    """``ap`` (classes, thresholds) with ``nan`` for classes without ground truth; curves at the first threshold."""

    ap: np.ndarray
    thresholds: tuple[float, ...]
    positives: np.ndarray
    detections: np.ndarray
    curves: dict = field(default_factory=dict)  # class -> (recall, precision)

    def ap_at(self, threshold: float = 0.5) -> np.ndarray:
        return self.ap[:, self.thresholds.index(round(threshold, 2))]

    @property
    def map50(self) -> float:
        return _nanmean(self.ap_at(0.5))

    @property
    def map50_95(self) -> float:
        return _nanmean(np.array([_nanmean(self.ap[:, t]) for t in range(len(self.thresholds))]))


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def evaluate_detections(predictions: Sequence, truths: Sequence, num_classes: int,
                        thresholds: Sequence[float] = COCO_THRESHOLDS) -> DetectionMetrics:
    """AP for every class and IoU threshold.

    ``predictions[i]`` = (boxes (n, 4) xyxy, scores (n,), class_ids (n,)) and ``truths[i]`` = (boxes (m, 4),
    class_ids (m,)) for image i, in the same pixel coordinates.
    """
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} images")
    thresholds = tuple(round(float(t), 2) for t in thresholds)
    ap = np.full((num_classes, len(thresholds)), np.nan)
    positives = np.zeros(num_classes, dtype=np.int64)
    counts = np.zeros(num_classes, dtype=np.int64)
    curves = {}
    for cls in range(num_classes):
        scores, hits = [], [[] for _ in thresholds]
        for (boxes, det_scores, det_classes), (gt_boxes, gt_classes) in zip(predictions, truths):
            mine = np.asarray(det_classes).reshape(-1) == cls
            theirs = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)[np.asarray(gt_classes).reshape(-1) == cls]
            positives[cls] += len(theirs)
            image_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)[mine]
            image_boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[mine]
            scores.append(np.sort(image_scores)[::-1])
            for t, threshold in enumerate(thresholds):
                hits[t].append(match_image(image_boxes, image_scores, theirs, threshold))
        scores = np.concatenate(scores) if scores else np.zeros(0)
        counts[cls] = len(scores)
        if positives[cls] == 0:
            continue
        for t in range(len(thresholds)):
            recall, precision = pr_curve(scores, np.concatenate(hits[t]), int(positives[cls]))
            ap[cls, t] = average_precision(recall, precision) if len(scores) else 0.0
            if t == 0:
                curves[cls] = (recall, precision)
    return DetectionMetrics(ap, thresholds, positives, counts, curves)
