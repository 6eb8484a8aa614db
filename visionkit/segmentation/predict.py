"""Semantic segmentation: predict class-id masks for images, and score a model on image/mask pairs.

Prediction: resize so the long side is the size the model was trained at, run the model on the whole
image (padded to a multiple of its stride) or, when the image is larger than ``tile``, on overlapping
tiles blended with a linear ramp, resize the class probabilities back to the original size, then argmax.
Evaluation accumulates one confusion matrix over every pixel of the set at the masks' own resolution.
Training lives in :mod:`visionkit.segmentation.train`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from visionkit.core.errors import ModelError, UsageError
from visionkit.core.io import ImageSource, as_sources, iter_images, source_name
from visionkit.core.results import ClassArea, Masks, SegmentationReport

DEFAULT_MODEL = "unet_person"
DEFAULT_TILE = 512  # pixels (after resizing to the model's training scale); larger images are tiled
DEFAULT_OVERLAP = 64
DEFAULT_ALPHA = 0.5
SUBSETS = ("all", "train", "val")


@dataclass
class Segmenter:
    """A loaded segmentation model and what is needed to feed it."""

    model: Any
    name: str
    class_names: list[str]
    long_side: int | None  # the long side images are resized to (None: native resolution)
    multiple: int  # input sides must be multiples of this
    extra: dict

    def __post_init__(self) -> None:
        import tensorflow as tf

        model = self.model

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])  # one trace for all sizes
        def run(batch):
            return model(batch, training=False)

        self._run = run

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(B, H, W, C) class probabilities; a sigmoid head's one channel becomes [1 - p, p]."""
        out = self._run(batch.astype(np.float32)).numpy()
        return np.concatenate([1.0 - out, out], axis=-1) if out.shape[-1] == 1 else out


def load_segmenter(model: "str | os.PathLike | Segmenter" = DEFAULT_MODEL) -> Segmenter:
    """A registry name (task ``segment``) or a ``.keras`` file saved by ``visionkit segment train``."""
    if isinstance(model, Segmenter):
        return model
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import fetch, load_model_file

    text = os.fspath(model)
    name = text
    if not (text.endswith(".keras") or os.sep in text or Path(text).exists()):
        spec = get_spec(text)
        if spec.task != "segment":
            raise ModelError(f"{spec.name!r} is a {spec.task} model, not a segmentation model "
                             f"(see `visionkit models list --task segment`)")
        text, name = str(fetch(spec)), spec.name  # a bundled .keras (+ .json sidecar), hash-checked
    loaded = load_model_file(text)
    if len(loaded.model.output_shape) != 4:
        raise ModelError(f"{name}: output shape {loaded.model.output_shape} is not a per-pixel (H, W, classes) map; "
                         "not a segmentation model")
    extra = loaded.extra or {}
    channels = loaded.model.output_shape[-1]
    count = max(2, channels)  # a sigmoid head's one channel is two classes
    names = list(loaded.class_names) if len(loaded.class_names) == count else [str(i) for i in range(count)]
    return Segmenter(loaded.model, name, names, extra.get("long_side"), int(extra.get("multiple", 32)), extra)


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


def predict_scaled(segmenter: Segmenter, image: np.ndarray, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                   batch_size: int = 4) -> np.ndarray:
    """Class probabilities (h, w, C) for an image already at the model's scale (whole, or tiled when larger)."""
    from visionkit.segmentation.augment import pad_to, round_up

    multiple = segmenter.multiple
    height, width = image.shape[:2]
    tile = round_up(max(tile, multiple), multiple)
    if height <= tile and width <= tile:
        padded = pad_to(image, round_up(height, multiple), round_up(width, multiple))
        return segmenter.probabilities(padded[None])[0, :height, :width]
    if overlap >= tile:
        raise UsageError(f"tile overlap ({overlap}) must be smaller than the tile ({tile})")
    padded = pad_to(image, max(height, tile), max(width, tile))
    rows, cols = tile_starts(padded.shape[0], tile, overlap), tile_starts(padded.shape[1], tile, overlap)
    window = np.outer(ramp_weights(tile, overlap), ramp_weights(tile, overlap))[..., None]
    total, weight = None, np.zeros((*padded.shape[:2], 1), np.float32)
    corners = [(r, c) for r in rows for c in cols]
    for first in range(0, len(corners), batch_size):
        chunk = corners[first:first + batch_size]
        probs = segmenter.probabilities(np.stack([padded[r:r + tile, c:c + tile] for r, c in chunk]))
        if total is None:
            total = np.zeros((*padded.shape[:2], probs.shape[-1]), np.float32)
        for (r, c), p in zip(chunk, probs):
            total[r:r + tile, c:c + tile] += p * window
            weight[r:r + tile, c:c + tile] += window
    return (total / weight)[:height, :width]


def predict_probabilities(segmenter: Segmenter, image: np.ndarray, tile: int = DEFAULT_TILE,
                          overlap: int = DEFAULT_OVERLAP) -> np.ndarray:
    """Class probabilities (H, W, C) at the image's original resolution."""
    import cv2

    from visionkit.segmentation.augment import resize_long_side

    scaled = resize_long_side(image, segmenter.long_side)
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


def _unique_stem(source: str, index: int, used: set) -> str:
    stem = Path(source).stem if not source.startswith("<") else f"image-{index}"
    candidate, number = stem, 2
    while candidate in used:
        candidate, number = f"{stem}-{number}", number + 1
    used.add(candidate)
    return candidate


def _save_outputs(save_dir: Path, stem: str, image: np.ndarray, result: Masks, alpha: float) -> Masks:
    from dataclasses import replace

    from visionkit.core.io import save_image
    from visionkit.core.viz import overlay_mask, palette
    from visionkit.core.writers import write_text_atomic

    mask_path, overlay_path, json_path = (save_dir / f"{stem}{suffix}" for suffix in ("_mask.png", "_overlay.png", ".json"))
    write_mask_png(mask_path, result.mask)
    save_image(overlay_path, overlay_mask(image, result.mask, alpha, palette(max(2, len(result.class_names)))))
    result = replace(result, mask_path=str(mask_path), overlay_path=str(overlay_path), json_path=str(json_path))
    write_text_atomic(json_path, json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def segment(images: ImageSource | Sequence[ImageSource], model: "str | os.PathLike | Segmenter" = DEFAULT_MODEL,
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


def evaluate(model: "str | os.PathLike | Segmenter", data: str | os.PathLike, classes: str | None = None,
             class_file: str | os.PathLike | None = None, subset: str = "all", skip_unmasked: bool = False,
             tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
             on_progress: Callable[[int, int], None] | None = None) -> SegmentationReport:
    """Pooled and per-image IoU, Dice and pixel accuracy of ``model`` on the image/mask pairs in ``data``.

    The model's own class map (saved with it) is used unless ``classes`` / ``class_file`` are given.
    ``subset`` ``train`` / ``val`` picks the images of the split recorded in the model when it was trained.
    """
    from visionkit.segmentation.data import ClassMap, load_pair, open_dataset
    from visionkit.segmentation import metrics as seg_metrics

    if subset not in SUBSETS:
        raise UsageError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    segmenter = load_segmenter(model)
    saved_map = segmenter.extra.get("class_map")
    class_map = None if (classes or class_file or not saved_map) else ClassMap.from_dict(saved_map)
    dataset = open_dataset(data, classes, class_file, class_map, skip_unmasked or subset != "all")
    if dataset.class_map.num_classes != len(segmenter.class_names):
        raise UsageError(f"the data has {dataset.class_map.num_classes} classes but {segmenter.name} predicts "
                         f"{len(segmenter.class_names)}; map the mask ids with --classes")
    if subset != "all":
        stems = set(segmenter.extra.get(f"{subset}_stems") or [])
        if not stems:
            raise UsageError(f"{segmenter.name} records no {subset} split; evaluate with subset 'all'")
        dataset = dataset.subset([i for i, stem in enumerate(dataset.stems()) if stem in stems])
        if not dataset.pairs:
            raise UsageError(f"none of the {subset} images recorded in {segmenter.name} is in {data}")
    count = dataset.class_map.num_classes
    pooled = np.zeros((count, count), np.int64)
    per_image = []
    for done, (image_path, mask_path) in enumerate(dataset.pairs, start=1):
        image, truth = load_pair(image_path, mask_path, dataset.class_map)
        predicted = predict_probabilities(segmenter, image, tile, overlap).argmax(axis=-1)
        matrix = seg_metrics.confusion_matrix(truth, predicted, count)
        pooled += matrix
        per_image.append(matrix)
        if on_progress:
            on_progress(done, len(dataset.pairs))
    names = segmenter.class_names  # what the predicted ids mean
    return SegmentationReport(segmenter.name, str(data), len(dataset.pairs), tuple(names),
                              seg_metrics.summarize(pooled, names),
                              seg_metrics.mean_of_image_scores(per_image), subset)
