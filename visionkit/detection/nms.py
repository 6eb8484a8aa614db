"""Greedy non-max suppression (NMS), class-agnostic or per class, exact and fast on CPU.

Semantics are those of ``tf.image.non_max_suppression`` and ``cv2.dnn.NMSBoxes``: boxes are visited in order of
decreasing score, and a box is dropped when its IoU with an already kept box is *greater than* ``iou``. Scores must
be *greater than* ``conf`` to be considered. (Greedy NMS as used by YOLO: Redmon & Farhadi 2017; the procedure goes
back to Felzenszwalb et al. 2010.)

Why it is hand-written: the library versions cost O(n x kept) IoU evaluations, which is slow when thousands of
boxes survive (10,000 scattered boxes take ~0.3 s in both TensorFlow and OpenCV; ``benchmarks/nms.py``). Here two
exact strategies are combined:

1. *greedy sweep* - while the best remaining box suppresses many others (dense clusters around objects, the usual
   detector output), take it and drop its overlaps in one vectorised step, scoring only the boxes whose left edge
   lies in the window that can reach the threshold (dead boxes are compacted away as they pile up);
2. *sparse graph* - for the rest, only pairs that can reach the IoU threshold are scored: boxes are sorted by their
   left edge and box ``j`` is paired with ``i`` only when ``x1_i <= x1_j <= x2_i - iou * w_i`` (IoU > t needs a
   horizontal overlap of at least ``t * max(w_i, w_j)``) and the two overlap vertically. The suppression edges
   form a DAG in score order; the
   greedy result is its unique solution of ``kept[j] = not any(kept[i] for edges i -> j)``, found by fixed-point
   iteration (exact once it stops changing; a sequential pass is the fallback for very deep chains).

Per-class NMS shifts each class's boxes along x by ``class_id * (extent + 1)`` so classes never overlap
(the "batched NMS" trick) and runs one class-agnostic pass.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from visionkit.core.errors import UsageError

#: Leave the greedy sweep after this many kept boxes in a row each removed fewer than _FEW boxes.
_PATIENCE = 8
_FEW = 4
#: Candidate pairs scored at once in the sparse phase (bounds memory to ~100 MB).
_PAIR_CHUNK = 1 << 21
#: Fixed-point iterations before falling back to the sequential pass.
_MAX_ROUNDS = 64


def _canonical(boxes) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise UsageError(f"boxes must have shape (N, 4) in xyxy format, received {boxes.shape}")
    x1, x2 = np.minimum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 0], boxes[:, 2])
    y1, y2 = np.minimum(boxes[:, 1], boxes[:, 3]), np.maximum(boxes[:, 1], boxes[:, 3])
    return np.stack([x1, y1, x2, y2], axis=1)


def _suppression_edges(boxes: np.ndarray, areas: np.ndarray, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i, j), i < j (score rank), whose IoU exceeds ``iou``; boxes are already in score order."""
    by_x = np.argsort(boxes[:, 0], kind="stable")
    x1, y1, x2, y2 = (boxes[by_x, k] for k in range(4))
    area = areas[by_x]
    reach = x2 - iou * (x2 - x1)
    reach += 1e-9 * np.maximum(np.abs(reach), 1.0)  # never lose a pair to rounding
    ends = np.searchsorted(x1, reach, side="right")
    counts = np.clip(ends - np.arange(len(x1)) - 1, 0, None)
    sources, targets = [], []
    starts = np.concatenate([[0], np.cumsum(counts)])
    first = 0
    while first < len(x1):
        last = int(np.searchsorted(starts, starts[first] + _PAIR_CHUNK, side="right")) - 1
        last = max(last, first + 1)
        chunk_counts = counts[first:last]
        total = int(chunk_counts.sum())
        if total:
            p = np.repeat(np.arange(first, last), chunk_counts)
            q = p + 1 + np.arange(total) - np.repeat(starts[first:last] - starts[first], chunk_counts)
            height = np.minimum(y2[p], y2[q]) - np.maximum(y1[p], y1[q])
            rows = height > 0  # pairs that overlap vertically too (few): score only those
            p, q, height = p[rows], q[rows], height[rows]
            width = np.minimum(x2[p], x2[q]) - x1[q]
            intersection = np.clip(width, 0, None) * np.clip(height, 0, None)
            union = area[p] + area[q] - intersection
            hit = intersection > iou * union  # IoU > t without a division; union > 0 whenever this holds
            hit &= union > 0
            sources.append(by_x[p[hit]])
            targets.append(by_x[q[hit]])
        first = last
    if not sources:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, b = np.concatenate(sources), np.concatenate(targets)
    return np.minimum(a, b), np.maximum(a, b)


def _resolve(count: int, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The greedy keep-mask of a suppression DAG (edges from higher to lower score rank)."""
    kept = np.ones(count, dtype=bool)
    if len(sources) == 0:
        return kept
    for _ in range(_MAX_ROUNDS):
        suppressed = np.zeros(count, dtype=bool)
        suppressed[targets[kept[sources]]] = True
        if np.array_equal(~suppressed, kept):
            return kept
        kept = ~suppressed
    order = np.argsort(targets, kind="stable")  # deep chains: one sequential pass in rank order
    sources, targets = sources[order], targets[order]
    bounds = np.searchsorted(targets, np.arange(count + 1))
    kept = np.ones(count, dtype=bool)
    for j in np.unique(targets):
        kept[j] = not kept[sources[bounds[j]:bounds[j + 1]]].any()
    return kept


def _greedy_sweep(boxes: np.ndarray, areas: np.ndarray, iou: float, limit: int) -> tuple[list[int], np.ndarray]:
    """Phase 1: plain greedy NMS over boxes in score order, each kept box scoring only the boxes in its x-window.

    Returns the kept ranks and the ranks still undecided when the kept boxes stopped clearing crowds.
    """
    by_x = np.argsort(boxes[:, 0], kind="stable")
    position = np.empty_like(by_x)
    position[by_x] = np.arange(len(by_x))
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[by_x, k]) for k in range(4))
    scaled_area = iou * areas[by_x]
    widest = float((x2 - x1).max()) if len(x1) else 0.0
    alive = np.ones(len(x1), dtype=bool)  # by x position
    alive_by_rank = np.ones(len(x1), dtype=bool)
    kept: list[int] = []
    rank, quiet_rounds, dead = 0, 0, 0
    count = len(x1)
    while rank < count and len(kept) < limit and quiet_rounds < _PATIENCE:
        rank += int(np.argmax(alive_by_rank[rank:]))  # next undecided box in score order
        if not alive_by_rank[rank]:
            rank = count
            break
        if dead > len(x1) // 2 and len(x1) > 256:  # drop the dead from the x-sorted arrays: smaller windows
            by_x, x1, y1, x2, y2, scaled_area = (a[alive] for a in (by_x, x1, y1, x2, y2, scaled_area))
            position[by_x] = np.arange(len(by_x))
            alive = np.ones(len(by_x), dtype=bool)
            widest, dead = float((x2 - x1).max()), 0
        p = position[rank]
        alive[p] = alive_by_rank[rank] = False
        kept.append(rank)
        rank += 1
        left, right, width = x1[p], x2[p], x2[p] - x1[p]
        slack = 1e-9 * max(abs(left), abs(right), 1.0)
        lo = np.searchsorted(x1, left + iou * width - widest - slack, side="left")
        hi = np.searchsorted(x1, right - iou * width + slack, side="right")
        overlap_w = np.minimum(right, x2[lo:hi]) - np.maximum(left, x1[lo:hi])
        overlap_h = np.minimum(y2[p], y2[lo:hi]) - np.maximum(y1[p], y1[lo:hi])
        intersection = np.maximum(overlap_w, 0) * np.maximum(overlap_h, 0)
        # IoU > t  <=>  inter > t (a + b - inter)  <=>  (1 + t) inter > t a + t b  (no division, no 0/0)
        hit = (1.0 + iou) * intersection > scaled_area[lo:hi] + scaled_area[p]
        hit &= alive[lo:hi]
        removed_at = np.flatnonzero(hit) + lo
        removed = len(removed_at)
        alive[removed_at] = False
        alive_by_rank[by_x[removed_at]] = False
        dead += removed + 1
        quiet_rounds = quiet_rounds + 1 if removed < _FEW else 0
    undecided = np.flatnonzero(alive_by_rank[rank:count]) + rank
    return kept, undecided if len(kept) < limit else undecided[:0]


def nms(boxes, scores, iou: float = 0.5, max_det: int | None = None) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS, best score first (class-agnostic).

    ``boxes``: (N, 4) ``xyxy``; ``scores``: (N,). A box is removed when its IoU with a kept, higher-scoring box
    is greater than ``iou``. Equal scores keep their input order. ``max_det`` caps the number returned.
    """
    boxes = _canonical(boxes)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise UsageError(f"got {len(boxes)} boxes but {len(scores)} scores")
    if not 0.0 <= iou <= 1.0:
        raise UsageError(f"iou threshold must be in [0, 1], received {iou}")
    limit = len(boxes) if max_det is None else int(max_det)
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept, alive = _greedy_sweep(boxes, areas, iou, limit)
    if alive.size and len(kept) < limit:  # phase 2: sparse suppression graph on what is left
        sources, targets = _suppression_edges(boxes[alive], areas[alive], iou)
        kept.extend(alive[_resolve(alive.size, sources, targets)].tolist())
    return order[np.asarray(kept[:limit], dtype=np.int64)]


def batched_nms(boxes, scores, class_ids, iou: float = 0.5, max_det: int | None = None) -> np.ndarray:
    """Per-class NMS: boxes of different classes never suppress each other. Indices, best score first."""
    boxes = _canonical(boxes)
    class_ids = np.asarray(class_ids).reshape(-1)
    if len(class_ids) != len(boxes):
        raise UsageError(f"got {len(boxes)} boxes but {len(class_ids)} class ids")
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    low, high = boxes[:, [0, 2]].min(), boxes[:, [0, 2]].max()
    shift = (class_ids.astype(np.float64) - class_ids.min()) * (high - low + 1.0)
    shifted = boxes + np.stack([shift, np.zeros_like(shift), shift, np.zeros_like(shift)], axis=1)
    return nms(shifted, scores, iou=iou, max_det=max_det)


def non_max_suppression(
    boxes,
    scores,
    class_ids=None,
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    classes: Sequence[int] | None = None,
    agnostic: bool = False,
) -> np.ndarray:
    """Filter then suppress: indices of the detections to keep, best score first.

    Keeps boxes with score > ``conf`` and (if ``classes`` is given) a class id in ``classes``, then runs per-class
    NMS (or class-agnostic with ``agnostic=True``) at IoU ``iou`` and returns at most ``max_det`` indices.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not 0.0 <= conf <= 1.0:
        raise UsageError(f"conf must be in [0, 1], received {conf}")
    if max_det < 1:
        raise UsageError(f"max_det must be at least 1, received {max_det}")
    candidates = np.flatnonzero(scores > conf)
    if class_ids is not None:
        class_ids = np.asarray(class_ids).reshape(-1)
        if classes is not None:
            candidates = candidates[np.isin(class_ids[candidates], np.asarray(list(classes)))]
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if class_ids is None or agnostic:
        kept = nms(boxes[candidates], scores[candidates], iou, max_det)
    else:
        kept = batched_nms(boxes[candidates], scores[candidates], class_ids[candidates], iou, max_det)
    return candidates[kept]
