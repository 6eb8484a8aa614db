"""Bounding-box maths on numpy arrays: format conversion, area, pairwise IoU, clipping and letterboxing.

Formats use the names of ``keras.utils.bounding_boxes`` (``xyxy``, ``yxyx``, ``xywh`` = corner + size,
``center_xywh``; ``rel_*`` variants are fractions of the image size), so tensors in a ``tf.data`` pipeline can be
converted with Keras' own ``convert_format`` and arrays here agree with it (tests check both against each other).
Post-processing runs once per image on a few hundred boxes, where numpy costs microseconds and a TensorFlow op
call costs a dispatch each; that is why these are numpy rather than calls into Keras.

IoU (intersection over union, a.k.a. the Jaccard index) is the overlap measure of YOLO (Redmon et al. 2016, §2)
and of the PASCAL VOC / COCO evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visionkit.core.errors import UsageError

FORMATS = ("xyxy", "yxyx", "xywh", "center_xywh", "rel_xyxy", "rel_yxyx", "rel_xywh", "rel_center_xywh")


def _check_format(name: str) -> str:
    key = name.lower()
    if key not in FORMATS:
        raise UsageError(f"unknown box format {name!r}; choose one of {', '.join(FORMATS)}")
    return key


def _to_xyxy(boxes: np.ndarray, fmt: str) -> np.ndarray:
    a, b, c, d = (boxes[..., i] for i in range(4))
    if fmt == "xyxy":
        return boxes
    if fmt == "yxyx":
        return np.stack([b, a, d, c], axis=-1)
    if fmt == "xywh":
        return np.stack([a, b, a + c, b + d], axis=-1)
    return np.stack([a - c / 2, b - d / 2, a + c / 2, b + d / 2], axis=-1)  # center_xywh


def _from_xyxy(boxes: np.ndarray, fmt: str) -> np.ndarray:
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    if fmt == "xyxy":
        return boxes
    if fmt == "yxyx":
        return np.stack([y1, x1, y2, x2], axis=-1)
    if fmt == "xywh":
        return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)
    return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)  # center_xywh


def convert_format(boxes, source: str, target: str, height: float | None = None, width: float | None = None) -> np.ndarray:
    """Convert ``(..., 4)`` boxes between formats; ``rel_*`` formats need the image ``height`` and ``width``."""
    source, target = _check_format(source), _check_format(target)
    boxes = np.asarray(boxes, dtype=np.float64 if np.asarray(boxes).dtype != np.float32 else np.float32)
    if boxes.shape[-1:] != (4,):
        raise UsageError(f"boxes must have shape (..., 4), received {boxes.shape}")
    if source == target:
        return boxes.copy()
    relative = source.startswith("rel_") or target.startswith("rel_")
    if relative and (height is None or width is None):
        raise UsageError(f"converting {source} -> {target} needs the image height and width")
    scale = np.array([width, height, width, height], dtype=boxes.dtype) if relative else None
    xyxy = _to_xyxy(boxes, source.removeprefix("rel_"))
    if source.startswith("rel_"):
        xyxy = xyxy * scale
    if target.startswith("rel_"):
        xyxy = xyxy / scale
    return _from_xyxy(xyxy, target.removeprefix("rel_")).astype(boxes.dtype, copy=False)


def box_area(boxes) -> np.ndarray:
    """Area of ``xyxy`` boxes; boxes with a negative side have area 0."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def pairwise_iou(boxes1, boxes2) -> np.ndarray:
    """IoU of every ``xyxy`` box in ``boxes1`` (N, 4) with every box in ``boxes2`` (M, 4) -> (N, M).

    A pair whose union is empty (two degenerate boxes) has IoU 0.
    """
    a = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    sides = np.clip(bottom_right - top_left, 0, None)
    intersection = sides[..., 0] * sides[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def wh_iou(sizes1, sizes2) -> np.ndarray:
    """IoU of box shapes ``(w, h)`` as if the boxes shared a corner -> (N, M) (YOLOv2 anchor matching, §2)."""
    a = np.asarray(sizes1, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(sizes2, dtype=np.float64).reshape(-1, 2)
    intersection = np.minimum(a[:, None, 0], b[None, :, 0]) * np.minimum(a[:, None, 1], b[None, :, 1])
    union = (a[:, 0] * a[:, 1])[:, None] + (b[:, 0] * b[:, 1])[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def clip_boxes(boxes, height: float, width: float) -> np.ndarray:
    """Clip ``xyxy`` pixel boxes to the image ``[0, width] x [0, height]``."""
    boxes = np.array(boxes, dtype=np.float64, copy=True).reshape(-1, 4)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height)
    return boxes


@dataclass(frozen=True)
class Letterbox:
    """How an image of ``height x width`` was placed in a ``size`` canvas: scaled by ``scale``, offset by the pads."""

    height: int
    width: int
    size: tuple[int, int]  # canvas (height, width)
    scale: float
    pad_top: int
    pad_left: int

    @property
    def resized(self) -> tuple[int, int]:
        """(height, width) of the scaled image inside the canvas."""
        return (max(1, round(self.height * self.scale)), max(1, round(self.width * self.scale)))

    def to_canvas(self, boxes) -> np.ndarray:
        """Map ``xyxy`` boxes in original pixels to canvas pixels."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        offset = np.array([self.pad_left, self.pad_top, self.pad_left, self.pad_top], dtype=np.float64)
        return boxes * self.scale + offset

    def to_original(self, boxes) -> np.ndarray:
        """Map ``xyxy`` boxes in canvas pixels back to original pixels, clipped to the original image."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        offset = np.array([self.pad_left, self.pad_top, self.pad_left, self.pad_top], dtype=np.float64)
        return clip_boxes((boxes - offset) / self.scale, self.height, self.width)


def letterbox_geometry(height: int, width: int, size: tuple[int, int]) -> Letterbox:
    """Scale that fits ``height x width`` inside ``size`` (aspect kept) and the centring pads."""
    if height < 1 or width < 1:
        raise UsageError(f"cannot letterbox an image of {height}x{width} pixels")
    out_h, out_w = size
    scale = min(out_h / height, out_w / width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    return Letterbox(int(height), int(width), (int(out_h), int(out_w)), float(scale), (out_h - new_h) // 2, (out_w - new_w) // 2)


def letterbox(image: np.ndarray, size: tuple[int, int], fill: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` to fit ``size`` keeping its aspect ratio, centred on a ``fill``-grey canvas (OpenCV)."""
    import cv2

    geometry = letterbox_geometry(image.shape[0], image.shape[1], size)
    new_h, new_w = geometry.resized
    shrinking = new_h < image.shape[0]
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    canvas = np.full((*geometry.size, image.shape[2]), fill, dtype=image.dtype)
    canvas[geometry.pad_top:geometry.pad_top + new_h, geometry.pad_left:geometry.pad_left + new_w] = resized
    return canvas, geometry
