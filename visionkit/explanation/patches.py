"""What units of a layer respond to: for a folder of images, the patches that activate chosen units most (Zeiler &
Fergus 2014, "Visualizing and Understanding Convolutional Networks", section 4 and figure 2: the top 9 activations
of a unit, each shown as the patch of the image it sees), laid out as a contact sheet.

Zeiler & Fergus crop each patch to the unit's receptive field. Modern networks with squeeze-and-excitation blocks
(EfficientNet) let every unit after the first block see the whole image, so the theoretical receptive field says
nothing there; the patch here is the unit's effective receptive field instead (Luo et al. 2016, "Understanding the
Effective Receptive Field in Deep Convolutional Neural Networks"): the smallest square around the unit's position
holding ``erf_mass`` of the magnitude of the unit's gradient with respect to the input pixels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from visionkit.core.errors import InputError, UsageError
from visionkit.core.io import ImageSource, as_sources, iter_images, load_image, source_name
from visionkit.explanation.config import (DEFAULT_BATCH_SIZE, DEFAULT_ERF_MASS, DEFAULT_MODEL, DEFAULT_TILE, DEFAULT_TOP,
                                      DEFAULT_UNITS)
from visionkit.explanation.results import Patch, UnitPatches


def unit_maxima(activations: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each image's response per unit from (n, h, w, k): ``(max (n, k), flat position of the max (n, k), mean over
    positions (n, k))``."""
    flat = activations.reshape(activations.shape[0], -1, activations.shape[-1])
    return flat.max(axis=1), flat.argmax(axis=1), flat.mean(axis=1)


def ranked_images(maxima: np.ndarray, means: np.ndarray, unit: int) -> np.ndarray:
    """Image indices by the unit's strongest response, ties (a saturated ReLU6) broken by its mean response."""
    return np.lexsort((-means[:, unit], -maxima[:, unit]))


def strongest_units(maxima: np.ndarray, means: np.ndarray, count: int, top: int) -> list[int]:
    """The ``count`` units whose ``top``-th best image responds most (so each has ``top`` strong patches), ties
    broken by the unit's mean response over all images and positions."""
    k = min(top, maxima.shape[0])
    strength = np.sort(maxima, axis=0)[-k]
    return [int(u) for u in np.lexsort((-means.mean(axis=0), -strength))[:count]]


def unit_centre(position: int, feature_shape: tuple[int, int], input_shape: tuple[int, int]) -> tuple[float, float]:
    """(row, column) in input pixels of the centre of feature-map cell ``position`` (row-major flat index)."""
    rows, cols = feature_shape
    row, col = divmod(int(position), cols)
    return (row + 0.5) * input_shape[0] / rows, (col + 0.5) * input_shape[1] / cols


def square_window(centre: tuple[float, float], side: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of a ``side`` x ``side`` square centred at ``centre`` (row, col), moved to lie
    inside an image of ``shape`` (and cut to it when larger)."""
    height, width = shape
    top = int(np.floor(centre[0] - side / 2 + 0.5))
    left = int(np.floor(centre[1] - side / 2 + 0.5))
    top = min(max(top, 0), max(height - side, 0))
    left = min(max(left, 0), max(width - side, 0))
    return top, left, min(top + side, height), min(left + side, width)


def erf_side(saliency: np.ndarray, centre: tuple[float, float], mass: float) -> int:
    """The smallest side of a square around ``centre`` that holds ``mass`` of ``saliency`` (|d unit / d pixels|,
    (H, W), >= 0); the largest side when the map is all zero."""
    saliency = np.asarray(saliency, dtype=np.float64)
    total = saliency.sum()
    largest = max(saliency.shape)
    if total <= 0:
        return largest
    integral = np.pad(saliency.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    for side in range(1, largest + 1):
        top, left, bottom, right = square_window(centre, side, saliency.shape)
        inside = integral[bottom, right] - integral[top, right] - integral[bottom, left] + integral[top, left]
        if inside >= mass * total - 1e-12:
            return side
    return largest


def unit_saliency(feature_model, views: np.ndarray, positions: Sequence[int], units: Sequence[int]) -> np.ndarray:
    """|d A[position, unit] / d pixels| summed over colour channels, one (H, W) map per row of ``views``."""
    import tensorflow as tf

    pixels = tf.convert_to_tensor(np.asarray(views, dtype=np.float32))
    index = np.stack([np.arange(len(views)), np.asarray(positions), np.asarray(units)], axis=1).astype(np.int32)
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        activations = feature_model(pixels, training=False)
        flat = tf.reshape(activations, (len(views), -1, activations.shape[-1]))
        chosen = tf.gather_nd(flat, index)
    return np.abs(tape.gradient(chosen, pixels).numpy()).sum(axis=-1)


def visualize_units(images: ImageSource | Sequence[ImageSource], model=DEFAULT_MODEL, layer: str | None = None,
                    units: Sequence[int] | None = None, count: int = DEFAULT_UNITS, top: int = DEFAULT_TOP,
                    output: str | os.PathLike | None = None, erf_mass: float = DEFAULT_ERF_MASS,
                    tile: int = DEFAULT_TILE, batch_size: int = DEFAULT_BATCH_SIZE, recursive: bool = False,
                    on_progress: Callable[[int, int], None] | None = None) -> UnitPatches:
    """The ``top`` image patches (one per image) that most activate each of ``units`` of ``layer`` over
    ``images`` (default units: the ``count`` most active), and their contact sheet written to ``output`` (.png).

    ``layer`` as in :func:`visionkit.explain`; images are fed whole, resized to the model's input. Unreadable
    images are skipped and listed in ``skipped``.
    """
    import keras

    from visionkit.core.model import load_model
    from visionkit.explanation.layers import find_layer, tapped_model
    from visionkit.explanation.predict import model_view

    if count < 1 or top < 1 or tile < 8 or batch_size < 1:
        raise UsageError(f"count, top and batch_size must be at least 1 and tile at least 8, received {count}, {top}, "
                         f"{batch_size} and {tile}")
    if not 0 < erf_mass <= 1:
        raise UsageError(f"erf_mass must be in (0, 1], received {erf_mass}")
    if output is not None and Path(output).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UsageError(f"output {os.fspath(output)!r}: the contact sheet is an image; end it in .png or .jpg")
    sources = as_sources(images, recursive)
    loaded = load_model(model, task="classify")
    target = find_layer(loaded.model, layer, loaded.name)
    tapped = tapped_model(loaded.model, target.layer)
    features = keras.Model(tapped.inputs[0], tapped.outputs[0])
    traced = keras.Model(tapped.inputs[0], tapped.outputs[3])  # what the gradient is taken of (pre-activation)
    view = model_view(loaded)
    kept, skipped, maxima, where, means = [], [], [], [], []
    batch: list[np.ndarray] = []

    def flush() -> None:
        best, position, mean = unit_maxima(np.asarray(features(np.stack(batch).astype(np.float32), training=False)))
        maxima.append(best)
        where.append(position)
        means.append(mean)
        batch.clear()

    for index, item in enumerate(iter_images(sources, workers=2, transform=lambda image: view(image)[0])):
        if not item.ok:
            skipped.append(item.error)
        else:
            kept.append(index)
            batch.append(item.image)
            if len(batch) == batch_size:
                flush()
        if on_progress:
            on_progress(index + 1, len(sources))
    if batch:
        flush()
    if not kept:
        raise InputError(f"none of the {len(sources)} images could be read: {skipped[0]}")
    maxima, where, means = np.concatenate(maxima), np.concatenate(where), np.concatenate(means)
    channels = maxima.shape[1]
    chosen = _check_units(units, channels) if units is not None else strongest_units(maxima, means, count, top)
    picks = [(unit, int(i)) for unit in chosen for i in ranked_images(maxima, means, unit)[:top]
             if maxima[i, unit] > 0]
    feature_shape, input_shape = tuple(target.shape[:2]), loaded.input_size
    views = {i: view(load_image(sources[kept[i]])) for i in sorted({i for _, i in picks})}
    boxes, sides = {}, []
    for start in range(0, len(picks), batch_size):
        part = picks[start:start + batch_size]
        saliency = unit_saliency(traced, np.stack([views[i][0] for _, i in part]), [where[i, u] for u, i in part],
                                 [u for u, _ in part])
        for (unit, i), grad in zip(part, saliency):
            centre = unit_centre(where[i, unit], feature_shape, input_shape)
            side = erf_side(grad, centre, erf_mass)
            sides.append(side)
            boxes[unit, i] = square_window(centre, side, input_shape)
    patches = tuple(tuple(_patch(sources[kept[i]], kept[i], maxima[i, unit], boxes[unit, i], views[i][1].shape,
                                 input_shape) for u, i in picks if u == unit) for unit in chosen)
    result = UnitPatches(_describe(sources), loaded.name, target.name, channels, tuple(chosen), patches, len(kept),
                         float(np.median(sides)) if sides else 0.0, erf_mass, skipped=tuple(skipped))
    if output is not None:
        from dataclasses import replace

        from visionkit.core.io import save_image
        from visionkit.core.viz import contact_sheet

        rows = [[_crop(views[i][0], boxes[unit, i]) for u, i in picks if u == unit] for unit in chosen]
        captions = [[f"{p.activation:.3g}" for p in row] for row in patches]
        title = f"{loaded.name} {target.name}: top {top} patches of {len(chosen)} of {channels} units, {len(kept)} images"
        save_image(output, contact_sheet(rows, captions, [f"unit {u}" for u in chosen], tile=tile, title=title))
        result = replace(result, sheet=os.fspath(output))
    return result


def _check_units(units: Sequence[int], channels: int) -> list[int]:
    wrong = [u for u in units if not 0 <= int(u) < channels]
    if wrong or not units:
        raise UsageError(f"units must be indices 0-{channels - 1} of the layer's {channels} channels, received "
                         f"{list(units)}")
    return [int(u) for u in units]


def _crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    top, left, bottom, right = box
    return image[top:bottom, left:right]


def _patch(source, index, activation, box, original_shape, input_shape) -> Patch:
    """The patch with its box mapped from model-input pixels back to the original image's."""
    top, left, bottom, right = box
    sy, sx = original_shape[0] / input_shape[0], original_shape[1] / input_shape[1]
    return Patch(source_name(source, index), float(activation), (left * sx, top * sy, right * sx, bottom * sy))


def _describe(sources) -> str:
    names = [source_name(s, i) for i, s in enumerate(sources)]
    folders = {os.path.dirname(n) for n in names}
    return f"{folders.pop() or '.'} ({len(names)} images)" if len(folders) == 1 else f"{len(names)} images"
