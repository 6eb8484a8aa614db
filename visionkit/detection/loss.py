"""The YOLO training losses with their target assignment, in TensorFlow (they run inside ``model.fit``).

YOLOv2 (:func:`yolo_loss`; Redmon & Farhadi 2017, §2; Redmon et al. 2016, §2.2): each ground-truth box is the
responsibility of the grid cell that contains its centre and, in that cell, of the anchor whose shape has the
highest IoU with it. That anchor learns
- its box: squared error on ``σ(t_x), σ(t_y)`` (offsets inside the cell) and on ``t_w, t_h`` against
  ``log(w / p_w), log(h / p_h)``, weighted by ``coord_weight · (2 - w·h)`` so small boxes count more (YOLOv3);
- objectness 1 (binary cross-entropy on ``t_o``);
- its class (softmax cross-entropy).
Every other anchor learns objectness 0, except one whose decoded box already overlaps some ground truth with
IoU above ``ignore_iou``: it is neither rewarded nor punished (YOLOv2's 0.6 threshold; YOLOv3 uses 0.5).

YOLOv3 (:func:`yolo3_head_loss`, one per head of a multi-head model; Redmon & Farhadi 2018, §2.1-2.2, and
darknet's ``src/yolo_layer.c``): the responsible anchor is the best by shape IoU among the anchors of *all* heads,
and only the head owning it learns that box (in the cell holding the centre); the offsets ``σ(t_x), σ(t_y)`` learn
by binary cross-entropy against the position inside the cell, ``t_w, t_h`` by squared error on the log scale,
both weighted by ``2 - w·h``; objectness by binary cross-entropy with the same ignore rule (the paper's 0.5);
classes by independent binary cross-entropies (multilabel, §2.2), not a softmax.

``y_true`` is (batch, max_boxes, 5): ``x1, y1, x2, y2`` as fractions of the input and the class id, padded with
class -1. The loss per image is a sum over the grid; Keras averages it over the batch (and sums the heads).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from visionkit.detection.decode import MAX_LOG_SCALE

#: Boxes narrower or shorter than this fraction of the input are ignored as targets (e.g. cropped away).
MIN_SIDE = 1e-3


def decode_boxes(raw, anchors, scale_x_y: float = 1.0):
    """TensorFlow twin of :func:`visionkit.detection.decode.decode` for the boxes: (B, S, S, A, 4) rel xyxy."""
    rows, cols = raw.shape[1], raw.shape[2]
    grid_x = tf.reshape(tf.range(cols, dtype=raw.dtype), (1, 1, cols, 1))
    grid_y = tf.reshape(tf.range(rows, dtype=raw.dtype), (1, rows, 1, 1))
    shift = (scale_x_y - 1.0) / 2.0
    cx = (tf.sigmoid(raw[..., 0]) * scale_x_y - shift + grid_x) / cols
    cy = (tf.sigmoid(raw[..., 1]) * scale_x_y - shift + grid_y) / rows
    w = anchors[:, 0] * tf.exp(tf.minimum(raw[..., 2], MAX_LOG_SCALE))
    h = anchors[:, 1] * tf.exp(tf.minimum(raw[..., 3], MAX_LOG_SCALE))
    return tf.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def _iou(a, b):
    """Elementwise IoU of broadcastable xyxy tensors."""
    width = tf.maximum(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]), 0.0)
    height = tf.maximum(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]), 0.0)
    intersection = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return tf.math.divide_no_nan(intersection, area_a + area_b - intersection)


def assign_targets(y_true, grid_shape, anchors, all_anchors=None, first: int = 0):
    """Scatter ground truth onto the grid: (mask, txy, twh, class, box scale), each (B, S_h, S_w, A[, k]).

    ``all_anchors`` (YOLOv3): the anchors of every head, of which this head's ``anchors`` are rows ``first …``;
    a box is assigned here only when its best anchor among all of them is one of this head's.
    """
    batch = tf.shape(y_true)[0]
    rows, cols, count = grid_shape
    all_anchors = anchors if all_anchors is None else all_anchors
    boxes, labels = y_true[..., :4], y_true[..., 4]
    w, h = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    valid = (labels >= 0) & (w > MIN_SIDE) & (h > MIN_SIDE)
    where = tf.where(valid)  # (K, 2): image, box
    boxes, labels, w, h = (tf.gather_nd(t, where) for t in (boxes, labels, w, h))
    inter = tf.minimum(w[:, None], all_anchors[None, :, 0]) * tf.minimum(h[:, None], all_anchors[None, :, 1])
    shape_iou = inter / (w[:, None] * h[:, None] + all_anchors[None, :, 0] * all_anchors[None, :, 1] - inter)
    best = tf.argmax(shape_iou, axis=1) - first
    mine = (best >= 0) & (best < count)
    where, boxes, labels, w, h, best = (tf.boolean_mask(t, mine) for t in (where, boxes, labels, w, h, best))
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    col = tf.clip_by_value(tf.cast(tf.floor(cx * cols), tf.int64), 0, cols - 1)
    row = tf.clip_by_value(tf.cast(tf.floor(cy * rows), tf.int64), 0, rows - 1)
    index = tf.stack([where[:, 0], row, col, best], axis=1)
    grid = tf.stack([batch, rows, cols, count])
    anchor = tf.gather(anchors, best)

    def scatter(values, depth=None):
        shape = grid if depth is None else tf.concat([grid, [depth]], 0)
        return tf.tensor_scatter_nd_update(tf.zeros(shape, values.dtype), index, values)

    mask = scatter(tf.ones_like(cx))
    txy = scatter(tf.stack([cx * cols - tf.cast(col, cx.dtype), cy * rows - tf.cast(row, cy.dtype)], 1), 2)
    twh = scatter(tf.stack([tf.math.log(w / anchor[:, 0]), tf.math.log(h / anchor[:, 1])], 1), 2)
    cls = scatter(tf.cast(labels, tf.int32))
    scale = scatter(2.0 - w * h)
    return mask, txy, twh, cls, scale, valid


def yolo_loss(y_true, y_pred, anchors, ignore_iou=0.6, coord_weight=5.0, noobj_weight=1.0, class_weight=1.0):
    """Per-image YOLOv2 loss (B,). ``anchors`` (A, 2) as fractions of the input; see the module docstring."""
    y_pred = tf.cast(y_pred, tf.float32)
    y_true = tf.cast(y_true, tf.float32)
    anchors = tf.constant(anchors, tf.float32) if not tf.is_tensor(anchors) else anchors
    rows, cols, count = y_pred.shape[1], y_pred.shape[2], y_pred.shape[3]
    mask, txy, twh, cls, scale, valid = assign_targets(y_true, (rows, cols, count), anchors)

    xy_error = tf.reduce_sum(tf.square(tf.sigmoid(y_pred[..., 0:2]) - txy), -1)
    wh_error = tf.reduce_sum(tf.square(y_pred[..., 2:4] - twh), -1)
    coord = coord_weight * mask * scale * (xy_error + wh_error)

    objectness = _objectness_loss(y_true, y_pred, anchors, mask, valid, ignore_iou, noobj_weight)

    classes = y_pred.shape[-1] - 5
    if classes > 1:
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=cls, logits=y_pred[..., 5:])
        class_loss = class_weight * mask * ce
    else:
        class_loss = tf.zeros_like(mask)
    return tf.reduce_sum(coord + objectness + class_loss, axis=[1, 2, 3])


def _objectness_loss(y_true, y_pred, anchors, mask, valid, ignore_iou, noobj_weight, scale_x_y=1.0):
    """BCE on ``t_o``: 1 for responsible anchors, 0 for the others unless their box overlaps a truth > ignore_iou."""
    predicted = decode_boxes(y_pred, anchors, scale_x_y)[:, :, :, :, None, :]  # (B, S, S, A, 1, 4)
    truth = y_true[:, None, None, None, :, :4]  # (B, 1, 1, 1, M, 4)
    overlap = tf.where(valid[:, None, None, None, :], _iou(predicted, truth), 0.0)
    best_overlap = tf.stop_gradient(tf.reduce_max(overlap, axis=-1)) if y_true.shape[1] != 0 else tf.zeros_like(mask)
    negative = (1.0 - mask) * tf.cast(best_overlap <= ignore_iou, tf.float32)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=mask, logits=y_pred[..., 4])
    return mask * bce + noobj_weight * negative * bce


def yolo3_head_loss(y_true, y_pred, all_anchors, first: int, scale_x_y: float = 1.0, ignore_iou: float = 0.5,
                    coord_weight: float = 1.0, noobj_weight: float = 1.0, class_weight: float = 1.0):
    """Per-image YOLOv3 loss (B,) of one head whose anchors are ``all_anchors[first:first + B_h]`` (fractions of
    the input); see the module docstring."""
    y_pred = tf.cast(y_pred, tf.float32)
    y_true = tf.cast(y_true, tf.float32)
    all_anchors = tf.constant(all_anchors, tf.float32) if not tf.is_tensor(all_anchors) else all_anchors
    rows, cols, count = y_pred.shape[1], y_pred.shape[2], y_pred.shape[3]
    anchors = all_anchors[first:first + count]
    mask, txy, twh, cls, scale, valid = assign_targets(y_true, (rows, cols, count), anchors, all_anchors, first)

    shift = (scale_x_y - 1.0) / 2.0  # σ(t)·s − (s − 1)/2 = offset  <=>  σ(t) = (offset + (s − 1)/2) / s
    xy_target = tf.clip_by_value((txy + shift) / scale_x_y, 0.0, 1.0)
    xy_error = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=xy_target, logits=y_pred[..., 0:2]), -1)
    wh_error = 0.5 * tf.reduce_sum(tf.square(y_pred[..., 2:4] - twh), -1)
    coord = coord_weight * mask * scale * (xy_error + wh_error)
    objectness = _objectness_loss(y_true, y_pred, anchors, mask, valid, ignore_iou, noobj_weight, scale_x_y)
    classes = y_pred.shape[-1] - 5
    one_hot = tf.one_hot(cls, classes, dtype=tf.float32)
    class_bce = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=one_hot, logits=y_pred[..., 5:]), -1)
    return tf.reduce_sum(coord + objectness + class_weight * mask * class_bce, axis=[1, 2, 3])


@keras.saving.register_keras_serializable(package="visionkit")
class Yolo3HeadLoss(keras.losses.Loss):
    """:func:`yolo3_head_loss` of one head as a Keras loss (give a multi-head model one per output)."""

    def __init__(self, all_anchors, first: int, scale_x_y: float = 1.0, ignore_iou: float = 0.5,
                 coord_weight: float = 1.0, noobj_weight: float = 1.0, class_weight: float = 1.0,
                 name="yolo3_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.all_anchors = [[float(v) for v in a] for a in all_anchors]
        self.first, self.scale_x_y, self.ignore_iou = int(first), float(scale_x_y), float(ignore_iou)
        self.coord_weight, self.noobj_weight, self.class_weight = (float(coord_weight), float(noobj_weight),
                                                                   float(class_weight))

    def call(self, y_true, y_pred):
        return yolo3_head_loss(y_true, y_pred, self.all_anchors, self.first, self.scale_x_y, self.ignore_iou,
                               self.coord_weight, self.noobj_weight, self.class_weight)

    def get_config(self):
        return {**super().get_config(), "all_anchors": self.all_anchors, "first": self.first,
                "scale_x_y": self.scale_x_y, "ignore_iou": self.ignore_iou, "coord_weight": self.coord_weight,
                "noobj_weight": self.noobj_weight, "class_weight": self.class_weight}


def head_losses(heads, ignore_iou: float = 0.5) -> list:
    """One :class:`Yolo3HeadLoss` per head of the ``heads`` metadata (anchors as fractions of the input)."""
    all_anchors = [a for head in heads for a in head["anchors"]]
    losses, first = [], 0
    for i, head in enumerate(heads):
        losses.append(Yolo3HeadLoss(all_anchors, first, float(head.get("scale_x_y", 1.0)), ignore_iou,
                                    name=f"yolo3_loss_{i}"))
        first += len(head["anchors"])
    return losses


@keras.saving.register_keras_serializable(package="visionkit")
class YoloLoss(keras.losses.Loss):
    """:func:`yolo_loss` as a Keras loss (mean over the batch of the per-image sums)."""

    def __init__(self, anchors, ignore_iou=0.6, coord_weight=5.0, noobj_weight=1.0, class_weight=1.0,
                 name="yolo_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.anchors = [[float(v) for v in a] for a in anchors]
        self.ignore_iou, self.coord_weight = float(ignore_iou), float(coord_weight)
        self.noobj_weight, self.class_weight = float(noobj_weight), float(class_weight)

    def call(self, y_true, y_pred):
        return yolo_loss(y_true, y_pred, self.anchors, self.ignore_iou, self.coord_weight, self.noobj_weight,
                         self.class_weight)

    def get_config(self):
        return {**super().get_config(), "anchors": self.anchors, "ignore_iou": self.ignore_iou,
                "coord_weight": self.coord_weight, "noobj_weight": self.noobj_weight, "class_weight": self.class_weight}
