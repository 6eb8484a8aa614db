"""Decode raw YOLO head outputs into boxes, objectness and class probabilities (numpy).

YOLOv2 (Redmon & Farhadi 2017, §2 "Direct location prediction"): for cell (c_x, c_y) of an S_w x S_h grid and
anchor (p_w, p_h), ``b_x = (σ(t_x) + c_x) / S_w``, ``b_y = (σ(t_y) + c_y) / S_h``, ``b_w = p_w e^{t_w}``,
``b_h = p_h e^{t_h}``, objectness ``σ(t_o)`` and class probabilities ``softmax(t_c)``.

YOLOv3 (Redmon & Farhadi 2018, §2.1-2.3) and YOLOv4 (Bochkovskiy et al. 2020, "eliminate grid sensitivity"), as
darknet's ``src/yolo_layer.c`` computes them (``forward_yolo_layer``, ``get_yolo_box``, ``get_yolo_detections``):
the same box formula on each of several heads, with the centre stretched by ``s = scale_x_y`` (1 in YOLOv3),
``b_x = (σ(t_x)·s − (s − 1)/2 + c_x) / S_w``; anchors given in input pixels and divided by the input size, so
``b_w = (anchor_w / input_w) e^{t_w}``; objectness ``σ(t_o)``; classes *independent logistic* ``σ(t_c)`` (not a
softmax: §2.2 "multilabel classification"). A candidate's score is objectness x class probability.

The Keras models' output contract (what :mod:`visionkit.convert.darknet` builds and a detector loader reads):

- a YOLOv2 model (``[region]``, and visionkit's own ``yolo_v2``) has ONE output (batch, S_h, S_w, B, 5 + C),
  with ``anchors`` (B, 2) as fractions of the input recorded beside it; decode with :func:`detections`;
- a YOLOv3/v4 model (``[yolo]``) has a LIST of outputs, one raw head tensor (batch, S_h, S_w, B_h, 5 + C) per
  ``[yolo]`` section in cfg order (coarsest grid first in the official cfgs), the last axis being
  ``t_x, t_y, t_w, t_h, t_o, t_c...`` before any activation (darknet's channel ``a·(5 + C) + k`` of the conv
  feeding the head). Beside it the metadata ``heads``: one dict per output with ``anchors`` (B_h, 2) as
  fractions of the input (the head's masked anchors / input size), ``scale_x_y``, and for information
  ``anchors_px``, ``stride``, ``grid``; plus ``num_classes`` and ``class_activation`` (``"logistic"``). Decode one
  image with :func:`head_detections`. (Keras unwraps a one-element output list, so a model with a single
  ``[yolo]`` head returns a bare tensor: what marks the YOLOv3 contract is the ``heads`` metadata, not the type.)

Boxes come out as ``xyxy`` fractions of the network input (the letterboxed canvas); the TensorFlow twin inside
the loss (:func:`visionkit.detection.loss.decode_boxes`) is tested to agree with the YOLOv2 decode.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from visionkit.core.errors import ModelError

#: t_w, t_h are clipped to this before ``exp`` (e^6 ≈ 400 anchor widths: far beyond any real box).
MAX_LOG_SCALE = 6.0
CLASS_ACTIVATIONS = ("softmax", "logistic")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + e^-x)


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def decode(raw, anchors, scale_x_y: float = 1.0, class_activation: str = "softmax",
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``raw`` (..., S_h, S_w, B, 5 + C) -> boxes (..., N, 4) rel xyxy, objectness (..., N), probs (..., N, C).

    N = S_h·S_w·B in row, column, anchor order; ``anchors``: (B, 2) fractions of the input. The defaults are
    YOLOv2's; YOLOv3/v4 heads use ``class_activation="logistic"`` and their ``scale_x_y``.
    """
    if class_activation not in CLASS_ACTIVATIONS:
        raise ModelError(f"class_activation must be one of {CLASS_ACTIVATIONS}, received {class_activation!r}")
    raw = np.asarray(raw, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    rows, cols, count = raw.shape[-4:-1]
    if count != len(anchors):
        raise ModelError(f"a head with {count} boxes per cell needs {count} anchors, received {len(anchors)}")
    grid_x = np.arange(cols, dtype=np.float64)[None, :, None]
    grid_y = np.arange(rows, dtype=np.float64)[:, None, None]
    shift = (scale_x_y - 1.0) / 2.0
    cx = (sigmoid(raw[..., 0]) * scale_x_y - shift + grid_x) / cols
    cy = (sigmoid(raw[..., 1]) * scale_x_y - shift + grid_y) / rows
    w = anchors[:, 0] * np.exp(np.minimum(raw[..., 2], MAX_LOG_SCALE))
    h = anchors[:, 1] * np.exp(np.minimum(raw[..., 3], MAX_LOG_SCALE))
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)
    lead = raw.shape[:-4]
    objectness = sigmoid(raw[..., 4])
    classes = raw.shape[-1] - 5
    if classes <= 0:
        probs = np.ones((*raw.shape[:-1], 1))
    else:
        probs = softmax(raw[..., 5:]) if class_activation == "softmax" else sigmoid(raw[..., 5:])
    return (boxes.reshape(*lead, -1, 4), objectness.reshape(*lead, -1), probs.reshape(*lead, -1, max(classes, 1)))


def _best_class(boxes, objectness, probs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    class_ids = probs.argmax(axis=-1)
    scores = objectness * np.take_along_axis(probs, class_ids[..., None], axis=-1)[..., 0]
    return boxes, scores, class_ids


def detections(raw, anchors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One YOLOv2 image's candidates: boxes (N, 4) rel xyxy, score = objectness x best class probability, class id."""
    return _best_class(*decode(raw, anchors))


def head_detections(raws: Sequence, heads: Sequence[dict], class_activation: str = "logistic",
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One YOLOv3/v4 image's candidates from all its heads, concatenated in head order.

    ``raws``: the model's outputs for one image, each (S_h, S_w, B_h, 5 + C) (one array for a one-head model);
    ``heads``: the metadata dicts (``anchors``, optional ``scale_x_y``). Returns boxes (N, 4) rel xyxy, score =
    objectness x best class probability, class id — as :func:`detections` does, so NMS and the rest of
    postprocessing are shared.
    """
    if isinstance(raws, np.ndarray) and raws.ndim == 4 and len(heads) == 1:
        raws = [raws]  # a one-head model's output, unwrapped by Keras
    if len(raws) != len(heads):
        raise ModelError(f"{len(raws)} head outputs but metadata for {len(heads)} heads")
    parts = [decode(raw, head["anchors"], float(head.get("scale_x_y", 1.0)), class_activation)
             for raw, head in zip(raws, heads)]
    boxes, objectness, probs = (np.concatenate([p[k] for p in parts], axis=-2 if k != 1 else -1) for k in range(3))
    return _best_class(boxes, objectness, probs)
