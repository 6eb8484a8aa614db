"""The YOLOv2 training loss with its target assignment, in TensorFlow (runs inside ``model.fit``).

Targets (Redmon & Farhadi 2017, §2; Redmon et al. 2016, §2.2): each ground-truth box is the responsibility of
the grid cell that contains its centre and, in that cell, of the anchor whose shape has the highest IoU with it.
That anchor learns
- its box: squared error on ``σ(t_x), σ(t_y)`` (offsets inside the cell) and on ``t_w, t_h`` against
  ``log(w / p_w), log(h / p_h)``, weighted by ``coord_weight · (2 - w·h)`` so small boxes count more (YOLOv3);
- objectness 1 (binary cross-entropy on ``t_o``);
- its class (softmax cross-entropy).
Every other anchor learns objectness 0, except one whose decoded box already overlaps some ground truth with
IoU above ``ignore_iou``: it is neither rewarded nor punished (YOLOv2's 0.6 threshold; YOLOv3 uses 0.5).

``y_true`` is (batch, max_boxes, 5): ``x1, y1, x2, y2`` as fractions of the input and the class id, padded with
class -1. The loss per image is a sum over the grid; Keras averages it over the batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from visionkit.detection.decode import MAX_LOG_SCALE

#: Boxes narrower or shorter than this fraction of the input are ignored as targets (e.g. cropped away).
MIN_SIDE = 1e-3


def decode_boxes(raw, anchors):
    """TensorFlow twin of :func:`visionkit.detection.decode.decode` for the boxes: (B, S, S, A, 4) rel xyxy."""
    rows, cols = raw.shape[1], raw.shape[2]
    grid_x = tf.reshape(tf.range(cols, dtype=raw.dtype), (1, 1, cols, 1))
    grid_y = tf.reshape(tf.range(rows, dtype=raw.dtype), (1, rows, 1, 1))
    cx = (tf.sigmoid(raw[..., 0]) + grid_x) / cols
    cy = (tf.sigmoid(raw[..., 1]) + grid_y) / rows
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


def assign_targets(y_true, grid_shape, anchors):
    """Scatter ground truth onto the grid: (mask, txy, twh, class, box scale), each (B, S_h, S_w, A[, k])."""
    batch = tf.shape(y_true)[0]
    rows, cols, count = grid_shape
    boxes, labels = y_true[..., :4], y_true[..., 4]
    w, h = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    valid = (labels >= 0) & (w > MIN_SIDE) & (h > MIN_SIDE)
    where = tf.where(valid)  # (K, 2): image, box
    boxes, labels, w, h = (tf.gather_nd(t, where) for t in (boxes, labels, w, h))
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    col = tf.clip_by_value(tf.cast(tf.floor(cx * cols), tf.int64), 0, cols - 1)
    row = tf.clip_by_value(tf.cast(tf.floor(cy * rows), tf.int64), 0, rows - 1)
    inter = tf.minimum(w[:, None], anchors[None, :, 0]) * tf.minimum(h[:, None], anchors[None, :, 1])
    shape_iou = inter / (w[:, None] * h[:, None] + anchors[None, :, 0] * anchors[None, :, 1] - inter)
    best = tf.argmax(shape_iou, axis=1)
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

    predicted = decode_boxes(y_pred, anchors)[:, :, :, :, None, :]  # (B, S, S, A, 1, 4)
    truth = y_true[:, None, None, None, :, :4]  # (B, 1, 1, 1, M, 4)
    overlap = tf.where(valid[:, None, None, None, :], _iou(predicted, truth), 0.0)
    best_overlap = tf.stop_gradient(tf.reduce_max(overlap, axis=-1)) if y_true.shape[1] != 0 else tf.zeros_like(mask)
    negative = (1.0 - mask) * tf.cast(best_overlap <= ignore_iou, tf.float32)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=mask, logits=y_pred[..., 4])
    objectness = mask * bce + noobj_weight * negative * bce

    classes = y_pred.shape[-1] - 5
    if classes > 1:
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=cls, logits=y_pred[..., 5:])
        class_loss = class_weight * mask * ce
    else:
        class_loss = tf.zeros_like(mask)
    return tf.reduce_sum(coord + objectness + class_loss, axis=[1, 2, 3])


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
