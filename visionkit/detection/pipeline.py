"""Detection training input: letterboxed images in memory, box-aware augmentation from Keras, ``tf.data`` batches.

Each image is decoded once, letterboxed to the network input (aspect ratio kept, grey padding) and kept as uint8.
Augmentation uses Keras' own box-aware preprocessing layers (they move the boxes with the pixels):
horizontal flip, scale jitter (``RandomZoom``, in and out), translation jitter (``RandomTranslation``) and colour
jitter (``RandomColorJitter``: brightness, contrast, saturation, hue). Boxes pushed out of the frame are clipped
and dropped when a side falls under 2 pixels. Batches are ``(pixels float32 [0, 255], y (B, M, 5))`` with
``y = x1, y1, x2, y2`` as fractions of the input and the class id, padded with class -1 (what
:class:`visionkit.detection.loss.YoloLoss` expects).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

from visionkit.detection.data import DetectionData
from visionkit.core.io import iter_images
from visionkit.detection.boxes import letterbox

log = logging.getLogger(__name__)

#: Augmentation strengths (defined once; the trainer passes them on).
AUGMENT = {"flip": True, "zoom": (-0.25, 0.35), "translate": 0.1, "brightness": 0.25, "contrast": 0.25,
           "saturation": (0.3, 0.7), "hue": 0.03}
MIN_SIDE_PX = 2.0


@dataclass
class Letterboxed:
    """Images letterboxed to ``size`` (N, H, W, 3) uint8, and per image boxes (n, 4) rel xyxy and class ids."""

    images: np.ndarray
    boxes: list[np.ndarray]
    classes: list[np.ndarray]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.images)


def letterbox_data(data: DetectionData, size: tuple[int, int], workers: int = 2,
                   on_progress: Callable[[int, int], None] | None = None) -> Letterboxed:
    """Decode and letterbox every image of ``data``; an image that fails to decode is skipped with a warning."""
    height, width = size
    scale = np.array([width, height, width, height], dtype=np.float64)
    images, boxes, classes, sources = [], [], [], []
    paths = [a.image for a in data.items]
    for index, item in enumerate(iter_images(paths, workers=workers, transform=lambda im: letterbox(im, size))):
        annotation = data.items[index]
        if not item.ok:
            log.warning("skipped: %s", item.error)
            data.warnings.append(item.error)
        else:
            canvas, geometry = item.image
            if (geometry.height, geometry.width) != tuple(annotation.size):
                ratio = np.array([geometry.width / annotation.size[1], geometry.height / annotation.size[0]] * 2)
                annotated = annotation.boxes * ratio  # header and decoded sizes differ: rescale the labels
            else:
                annotated = annotation.boxes
            images.append(canvas)
            boxes.append((geometry.to_canvas(annotated) / scale).astype(np.float32))
            classes.append(annotation.classes.astype(np.int32))
            sources.append(annotation.image)
        if on_progress:
            on_progress(index + 1, len(paths))
    stacked = np.stack(images) if images else np.zeros((0, height, width, 3), np.uint8)
    return Letterboxed(stacked, boxes, classes, sources)


def padded_targets(boxes: list[np.ndarray], classes: list[np.ndarray], max_boxes: int | None = None) -> np.ndarray:
    """(N, M, 5) targets: boxes and class ids, padded with zeros and class -1 to ``max_boxes``."""
    count = max([len(b) for b in boxes] + [1]) if max_boxes is None else max_boxes
    targets = np.zeros((len(boxes), count, 5), dtype=np.float32)
    targets[..., 4] = -1
    for i, (b, c) in enumerate(zip(boxes, classes)):
        n = min(len(b), count)
        targets[i, :n, :4] = b[:n]
        targets[i, :n, 4] = c[:n]
    return targets


def augmenter(seed: int = 0, settings: dict | None = None):
    """Keras box-aware augmentation layers, applied in order to ``{"images", "bounding_boxes"}`` batches."""
    import keras

    s = {**AUGMENT, **(settings or {})}
    fill = {"fill_mode": "constant", "fill_value": 114.0, "bounding_box_format": "xyxy"}
    steps = []
    if s["flip"]:
        steps.append(keras.layers.RandomFlip("horizontal", bounding_box_format="xyxy", seed=seed))
    if s["zoom"]:
        steps.append(keras.layers.RandomZoom(s["zoom"], seed=seed + 1, **fill))
    if s["translate"]:
        steps.append(keras.layers.RandomTranslation(s["translate"], s["translate"], seed=seed + 2, **fill))
    steps.append(keras.layers.RandomColorJitter(
        value_range=(0, 255), brightness_factor=s["brightness"], contrast_factor=s["contrast"],
        saturation_factor=s["saturation"], hue_factor=s["hue"], bounding_box_format="xyxy", seed=seed + 3))
    return steps


def make_dataset(data: Letterboxed, batch_size: int, augment: bool = False, shuffle: bool = False, seed: int = 0,
                 max_boxes: int | None = None, settings: dict | None = None):
    """A ``tf.data.Dataset`` of ``(pixels, targets)`` batches (see the module docstring)."""
    import tensorflow as tf

    height, width = data.images.shape[1:3]
    targets = padded_targets(data.boxes, data.classes, max_boxes)
    scale = tf.constant([width, height, width, height], tf.float32)
    dataset = tf.data.Dataset.from_tensor_slices((data.images, targets))
    if shuffle:
        dataset = dataset.shuffle(len(data.images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    steps = augmenter(seed, settings) if augment else []

    def transform(images, y):
        images = tf.cast(images, tf.float32)
        if not steps:
            return images, y
        batch = {"images": images, "bounding_boxes": {"boxes": y[..., :4] * scale, "labels": y[..., 4]}}
        for step in steps:
            batch = step(batch, training=True)
        boxes = tf.clip_by_value(batch["bounding_boxes"]["boxes"], 0.0, 1.0 * scale)
        labels = batch["bounding_boxes"]["labels"]
        big_enough = tf.reduce_all(boxes[..., 2:] - boxes[..., :2] >= MIN_SIDE_PX, axis=-1)
        labels = tf.where(big_enough & (y[..., 4] >= 0), tf.cast(labels, tf.float32), -1.0)
        return tf.clip_by_value(batch["images"], 0.0, 255.0), tf.concat([boxes / scale, labels[..., None]], -1)

    return dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
