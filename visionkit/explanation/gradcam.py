"""Grad-CAM maths (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", section 3), as small numpy functions, and the one TensorFlow step that feeds them.

For class c with score y^c (before the softmax) and the k feature maps A^k (h x w) of a convolutional layer:

- eq. 1: alpha_k^c = (1 / Z) sum_ij dy^c / dA^k_ij, the gradients global-average-pooled (Z = h w);
- eq. 2: L^c = ReLU(sum_k alpha_k^c A^k), kept where the evidence for c is positive;
- then upsampled (bilinear) to the image and scaled to [0, 1] for display.

The box checks (mass of the map inside a ground-truth box against a uniform map) are here too, as plain functions.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def channel_weights(gradients: np.ndarray) -> np.ndarray:
    """Eq. 1: the gradient of the class score w.r.t. each of the k maps, averaged over its h x w positions.
    ``gradients`` (h, w, k) -> (k,)."""
    return np.asarray(gradients, dtype=np.float64).mean(axis=(0, 1))


def class_activation_map(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Eq. 2: ReLU of the maps weighted by ``weights``: (h, w, k) and (k,) -> (h, w), >= 0."""
    return np.maximum(np.asarray(activations, dtype=np.float64) @ np.asarray(weights, dtype=np.float64), 0.0)


def gradcam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """The Grad-CAM map (h, w) of one image from a layer's activations and the class score's gradients there."""
    return class_activation_map(activations, channel_weights(gradients))


def upsample(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """The (h, w) map resized to ``height`` x ``width`` with bilinear interpolation (the paper's upsampling),
    each map cell centred on the image region it covers (OpenCV's half-pixel convention)."""
    import cv2

    return cv2.resize(np.asarray(cam, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def normalise(heat: np.ndarray) -> np.ndarray:
    """``heat`` scaled so its maximum is 1 (an all-zero map stays zero), float32."""
    heat = np.maximum(np.asarray(heat, dtype=np.float32), 0.0)
    top = float(heat.max(initial=0.0))
    return heat / top if top > 0 else heat


def peak(heat: np.ndarray) -> tuple[int, int]:
    """(x, y) of the hottest pixel."""
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return int(col), int(row)


def colour_map(heat: np.ndarray) -> np.ndarray:
    """A [0, 1] map as RGB uint8 with OpenCV's JET colour map (blue: cold, red: hot)."""
    import cv2

    grey = np.clip(np.asarray(heat, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(grey, cv2.COLORMAP_JET)[..., ::-1].copy()


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45, caption: str = "") -> np.ndarray:
    """The photo with the colour-mapped heat blended over it (``alpha`` of the colour), and a caption on top."""
    import cv2

    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colour_map(heat).astype(np.float32)
    canvas = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    if caption:
        scale = max(0.45, min(canvas.shape[:2]) / 600)
        (width, height), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(canvas, (0, 0), (width + 8, height + base + 8), (0, 0, 0), -1)
        cv2.putText(canvas, caption, (4, height + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


# --- checking where the heat is -------------------------------------------------------------------------------


def boxes_mask(height: int, width: int, boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """A boolean (height, width) mask of the union of ``boxes`` (x1, y1, x2, y2 in pixels; clipped to the image);
    a pixel is inside when its centre is."""
    mask = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in boxes:
        left, top = max(0, int(np.ceil(x1 - 0.5))), max(0, int(np.ceil(y1 - 0.5)))
        right, bottom = min(width, int(np.ceil(x2 - 0.5))), min(height, int(np.ceil(y2 - 0.5)))
        mask[top:bottom, left:right] = True
    return mask


def mass_inside(heat: np.ndarray, mask: np.ndarray) -> float:
    """The share of the map's total mass that lies inside ``mask`` (NaN for an all-zero map)."""
    heat = np.maximum(np.asarray(heat, dtype=np.float64), 0.0)
    total = heat.sum()
    return float(heat[mask].sum() / total) if total > 0 else float("nan")


def inside_ratio(heat: np.ndarray, mask: np.ndarray) -> float:
    """Mass inside ``mask`` divided by what a uniform map puts there (the mask's share of the image): 1 means no
    better than spreading the heat evenly, ``1 / area share`` means all of it inside."""
    return mass_inside(heat, mask) / float(mask.mean())


# --- the TensorFlow step ----------------------------------------------------------------------------------------


def activations_and_gradients(model, tapped, batch: np.ndarray, class_ids: Sequence[int] | None = None):
    """One forward and backward pass: ``(activations (n, h, w, k), gradients of each image's class score there,
    outputs (n, classes), class ids)``; without ``class_ids`` each image's top class is explained.

    ``tapped`` is :func:`visionkit.explanation.layers.tapped_model` of ``model``; the score is the pre-softmax one.
    The images of a batch do not interact (inference mode), so the gradient of the summed scores gives each
    image's own gradient.
    """
    import tensorflow as tf

    from visionkit.explanation.layers import class_scores

    pixels = tf.convert_to_tensor(np.asarray(batch, dtype=np.float32))
    with tf.GradientTape() as tape:
        activations, pre_final, outputs, _ = tapped(pixels, training=False)
        scores = class_scores(model, pre_final, outputs)
        ids = tf.argmax(scores, axis=-1, output_type=tf.int32) if class_ids is None else \
            tf.constant(np.asarray(class_ids, dtype=np.int32))
        chosen = tf.gather(scores, ids, axis=1, batch_dims=1)
    gradients = tape.gradient(chosen, activations)
    return activations.numpy(), gradients.numpy(), outputs.numpy(), ids.numpy()
