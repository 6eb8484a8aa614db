"""Semantic segmentation: predict class-id masks for images.

Prediction: resize so the long side is the size the model was trained at, run the model on the whole
image (padded to a multiple of its stride) or, when the image is larger than ``tile``, on overlapping
tiles blended with a linear ramp, resize the class probabilities back to the original size, then argmax.
Evaluation is :mod:`visionkit.segmentation.val`, training :mod:`visionkit.segmentation.train`.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from visionkit.core.errors import ModelError, UsageError
from visionkit.core.io import ImageSource, as_sources, iter_images, source_name
from visionkit.core.model import LoadedModel, load_model
from visionkit.segmentation.config import DEFAULT_ALPHA, DEFAULT_MODEL, DEFAULT_OVERLAP, DEFAULT_TILE
from visionkit.segmentation.results import ClassArea, Masks


def load_segmenter(model: "str | os.PathLike | LoadedModel" = DEFAULT_MODEL) -> LoadedModel:
    """A registry name (task ``segment``), a ``.keras`` file saved by ``visionkit segment train``, or a loaded model.

    Its ``extra`` says how to feed it: ``long_side`` (images are resized so their long side is this; None: native
    resolution) and ``multiple`` (input sides are padded to multiples of it).
    """
    if isinstance(model, LoadedModel):
        return model
    loaded = load_model(model, task="segment")
    if len(loaded.model.output_shape) != 4:
        raise ModelError(f"{loaded.name}: output shape {loaded.model.output_shape} is not a per-pixel (H, W, classes) "
                         "map; not a segmentation model")
    count = max(2, loaded.model.output_shape[-1])  # a sigmoid head's one channel is two classes
    names = list(loaded.class_names) if len(loaded.class_names) == count else [str(i) for i in range(count)]
    return replace(loaded, class_names=names, extra=dict(loaded.extra or {}))


def probabilities(segmenter: LoadedModel, batch: np.ndarray) -> np.ndarray:
    """(B, H, W, C) class probabilities; a sigmoid head's one channel becomes [1 - p, p]."""
    out = segmenter.predict(batch)
    return np.concatenate([1.0 - out, out], axis=-1) if out.shape[-1] == 1 else out


def _multiple(segmenter: LoadedModel) -> int:
    return int(segmenter.extra.get("multiple", 32))


def ramp_weights(size: int, overlap: int) -> np.ndarray:
    """1-D blending weights for a tile: rising linearly over ``overlap`` pixels at each end, 1 inside."""
    if overlap <= 0:
        return np.ones(size, np.float32)
    position = np.arange(size, dtype=np.float32)
    return np.clip(np.minimum(position + 1, size - position) / (overlap + 1), 1e-3, 1.0)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels that cover ``length`` with at least ``overlap`` shared."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def predict_scaled(segmenter: LoadedModel, image: np.ndarray, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                   batch_size: int = 4) -> np.ndarray:
    """Class probabilities (h, w, C) for an image already at the model's scale (whole, or tiled when larger)."""
    from visionkit.segmentation.augment import pad_to, round_up

    multiple = _multiple(segmenter)
    height, width = image.shape[:2]
    tile = round_up(max(tile, multiple), multiple)
    if height <= tile and width <= tile:
        padded = pad_to(image, round_up(height, multiple), round_up(width, multiple))
        return probabilities(segmenter, padded[None])[0, :height, :width]
    if overlap >= tile:
        raise UsageError(f"tile overlap ({overlap}) must be smaller than the tile ({tile})")
    padded = pad_to(image, max(height, tile), max(width, tile))
    rows, cols = tile_starts(padded.shape[0], tile, overlap), tile_starts(padded.shape[1], tile, overlap)
    window = np.outer(ramp_weights(tile, overlap), ramp_weights(tile, overlap))[..., None]
    total, weight = None, np.zeros((*padded.shape[:2], 1), np.float32)
    corners = [(r, c) for r in rows for c in cols]
    for first in range(0, len(corners), batch_size):
        chunk = corners[first:first + batch_size]
        probs = probabilities(segmenter, np.stack([padded[r:r + tile, c:c + tile] for r, c in chunk]))
        if total is None:
            total = np.zeros((*padded.shape[:2], probs.shape[-1]), np.float32)
        for (r, c), p in zip(chunk, probs):
            total[r:r + tile, c:c + tile] += p * window
            weight[r:r + tile, c:c + tile] += window
    return (total / weight)[:height, :width]


def predict_probabilities(segmenter: LoadedModel, image: np.ndarray, tile: int = DEFAULT_TILE,
                          overlap: int = DEFAULT_OVERLAP) -> np.ndarray:
    """Class probabilities (H, W, C) at the image's original resolution."""
    import cv2

    from visionkit.segmentation.augment import resize_long_side

    scaled = resize_long_side(image, segmenter.extra.get("long_side"))
    probs = predict_scaled(segmenter, scaled, tile, overlap)
    if probs.shape[:2] != image.shape[:2]:
        probs = cv2.resize(probs, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
        probs = probs.reshape(*image.shape[:2], -1)
    return probs


def class_areas(mask: np.ndarray, names: Sequence[str]) -> tuple[ClassArea, ...]:
    counts = np.bincount(mask.ravel(), minlength=len(names))
    return tuple(ClassArea(i, name, int(counts[i]), float(counts[i] / mask.size)) for i, name in enumerate(names))


def write_mask_png(path: str | os.PathLike, mask: np.ndarray) -> None:
    """A single-channel PNG of class ids, written atomically."""
    from PIL import Image

    from visionkit.core.writers import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(mask.astype(np.uint8), mode="L").save(tmp, format="PNG")


def overlay_mask(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5, colours: np.ndarray | None = None) -> np.ndarray:
    """Blend a class-id mask onto RGB ``image`` (class 0 left as it is)."""
    from visionkit.core.viz import palette

    colours = palette(int(mask.max()) + 1) if colours is None else colours
    coloured = colours[np.clip(mask, 0, len(colours) - 1)]
    blended = (image.astype(np.float32) * (1 - alpha) + coloured.astype(np.float32) * alpha).astype(np.uint8)
    return np.where(mask[..., None] > 0, blended, image)


def _unique_stem(source: str, index: int, used: set) -> str:
    stem = Path(source).stem if not source.startswith("<") else f"image-{index}"
    candidate, number = stem, 2
    while candidate in used:
        candidate, number = f"{stem}-{number}", number + 1
    used.add(candidate)
    return candidate


def _save_outputs(save_dir: Path, stem: str, image: np.ndarray, result: Masks, alpha: float) -> Masks:
    from visionkit.core.io import save_image
    from visionkit.core.viz import palette
    from visionkit.core.writers import write_text_atomic

    mask_path, overlay_path, json_path = (save_dir / f"{stem}{suffix}" for suffix in ("_mask.png", "_overlay.png", ".json"))
    write_mask_png(mask_path, result.mask)
    save_image(overlay_path, overlay_mask(image, result.mask, alpha, palette(max(2, len(result.class_names)))))
    result = replace(result, mask_path=str(mask_path), overlay_path=str(overlay_path), json_path=str(json_path))
    write_text_atomic(json_path, json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def segment(images: ImageSource | Sequence[ImageSource], model: "str | os.PathLike | LoadedModel" = DEFAULT_MODEL,
            save: str | os.PathLike | None = None, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
            alpha: float = DEFAULT_ALPHA, recursive: bool = False,
            on_progress: Callable[[int, int], None] | None = None) -> list[Masks]:
    """A class-id mask per image (paths, folders, globs, ``.txt`` lists, arrays or bytes), at the original size.

    With ``save``, writes ``<stem>_mask.png`` (class ids), ``<stem>_overlay.png`` (colours blended with
    ``alpha``) and ``<stem>.json`` (pixels and fraction per class) into that folder. Unreadable inputs give
    a result with ``error`` set; the batch goes on.
    """
    if tile < 32 or overlap < 0:
        raise UsageError(f"tile must be at least 32 pixels and overlap at least 0, received {tile} and {overlap}")
    if not 0 <= alpha <= 1:
        raise UsageError(f"alpha must be in [0, 1], received {alpha}")
    sources = as_sources(images, recursive)
    segmenter = load_segmenter(model)
    save_dir = Path(save) if save else None
    if save_dir:
        save_dir.mkdir(parents=True, exist_ok=True)
    results, used = [], set()
    for index, item in enumerate(iter_images(sources, workers=2)):
        name = source_name(sources[index], index)
        if not item.ok:
            results.append(Masks(name, model=segmenter.name, error=item.error))
        else:
            mask = predict_probabilities(segmenter, item.image, tile, overlap).argmax(axis=-1).astype(np.uint8)
            result = Masks(name, mask, tuple(segmenter.class_names), class_areas(mask, segmenter.class_names),
                           mask.shape, segmenter.name)
            if save_dir:
                result = _save_outputs(save_dir, _unique_stem(name, index, used), item.image, result, alpha)
            results.append(result)
        if on_progress:
            on_progress(index + 1, len(sources))
    return results
