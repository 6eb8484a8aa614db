"""Decode the raw YOLOv2 head output into boxes, objectness and class probabilities (numpy).

Redmon & Farhadi (2017), §2 "Direct location prediction": for cell (c_x, c_y) of an S_w x S_h grid and anchor
(p_w, p_h), ``b_x = (σ(t_x) + c_x) / S_w``, ``b_y = (σ(t_y) + c_y) / S_h``, ``b_w = p_w e^{t_w}``,
``b_h = p_h e^{t_h}``, objectness ``σ(t_o)`` and class probabilities ``softmax(t_c)``. Boxes come out as
``xyxy`` fractions of the network input (the letterboxed canvas); the TensorFlow twin inside the loss
(:func:`visionkit.ops.yolo_loss.decode_boxes`) is tested to agree with this one.
"""

from __future__ import annotations

import numpy as np

#: t_w, t_h are clipped to this before ``exp`` (e^6 ≈ 400 anchor widths: far beyond any real box).
MAX_LOG_SCALE = 6.0


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + e^-x)


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def decode(raw, anchors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``raw`` (..., S_h, S_w, B, 5 + C) -> boxes (..., S_h·S_w·B, 4) rel xyxy, objectness (..., N), probs (..., N, C)."""
    raw = np.asarray(raw, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    rows, cols, count = raw.shape[-4:-1]
    grid_x = np.arange(cols, dtype=np.float64)[None, :, None]
    grid_y = np.arange(rows, dtype=np.float64)[:, None, None]
    cx = (sigmoid(raw[..., 0]) + grid_x) / cols
    cy = (sigmoid(raw[..., 1]) + grid_y) / rows
    w = anchors[:, 0] * np.exp(np.minimum(raw[..., 2], MAX_LOG_SCALE))
    h = anchors[:, 1] * np.exp(np.minimum(raw[..., 3], MAX_LOG_SCALE))
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)
    lead = raw.shape[:-4]
    objectness = sigmoid(raw[..., 4])
    classes = raw.shape[-1] - 5
    probs = softmax(raw[..., 5:]) if classes > 0 else np.ones((*raw.shape[:-1], 1))
    return (boxes.reshape(*lead, -1, 4), objectness.reshape(*lead, -1), probs.reshape(*lead, -1, max(classes, 1)))


def detections(raw, anchors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's candidates: boxes (N, 4) rel xyxy, score = objectness x best class probability, class id."""
    boxes, objectness, probs = decode(raw, anchors)
    class_ids = probs.argmax(axis=-1)
    scores = objectness * np.take_along_axis(probs, class_ids[..., None], axis=-1)[..., 0]
    return boxes, scores, class_ids
