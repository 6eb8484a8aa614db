"""ImageNet-style classification: load -> resize + centre crop (or 10-crop TTA) -> model -> top-k."""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from visionkit.core.errors import UsageError
from visionkit.core.io import ImageSource, as_sources, iter_images, source_name
from visionkit.core.results import Classification, Prediction

DEFAULT_MODEL = "efficientnet_lite0"
DEFAULT_TOP_K = 5
DEFAULT_BATCH_SIZE = 32

_FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "area": Image.BOX,
            "lanczos": Image.LANCZOS}


def resize_short_side(image: np.ndarray, short: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resize so the shorter side is ``short`` pixels, keeping the aspect ratio (antialiased)."""
    height, width = image.shape[:2]
    scale = short / min(height, width)
    size = (max(short, round(width * scale)), max(short, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, _FILTERS[interpolation]))


def centre_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return image[top:top + height, left:left + width]


def ten_crops(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Four corners and the centre, and their mirror images (Krizhevsky et al. 2012, section 4.1)."""
    rows, cols = image.shape[:2]
    corners = [(0, 0), (0, cols - width), (rows - height, 0), (rows - height, cols - width)]
    crops = [image[r:r + height, c:c + width] for r, c in corners] + [centre_crop(image, height, width)]
    return np.stack(crops + [crop[:, ::-1] for crop in crops])


def make_transform(input_size: Sequence[int], resize: int | None, interpolation: str, tta: bool) -> Callable:
    """The per-image preprocessing as one function (run in the decoding threads)."""
    height, width = input_size
    short = resize or min(height, width)

    def transform(image: np.ndarray) -> np.ndarray:
        resized = resize_short_side(image, max(short, height, width) if resize is None else short, interpolation)
        if tta:
            return ten_crops(resized, height, width)
        return centre_crop(resized, height, width)[None]

    return transform


def top_k_predictions(probabilities: np.ndarray, names: Sequence[str], k: int) -> tuple[Prediction, ...]:
    order = np.argsort(-probabilities)[:k]
    return tuple(Prediction(int(i), names[i] if i < len(names) else str(i), float(probabilities[i])) for i in order)


def _as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Softmax the outputs unless they already are probabilities (rows summing to 1)."""
    outputs = outputs.astype(np.float64)
    if np.all(outputs >= 0) and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3):
        return outputs
    shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def classify(
    images: ImageSource | Sequence[ImageSource],
    model: str = DEFAULT_MODEL,
    top_k: int = DEFAULT_TOP_K,
    tta: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    recursive: bool = False,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Classification]:
    """Classify images (paths, folders, globs, ``.txt`` lists, arrays or bytes); one result per image.

    Unreadable inputs give a result with ``error`` set instead of stopping the batch.
    ``tta`` averages the ten crops of Krizhevsky et al. (2012). ``model`` is a registry name or a ``.keras`` path.
    """
    from visionkit.core.weights import load_model

    if top_k < 1:
        raise UsageError(f"top_k must be at least 1, received {top_k}")
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, received {batch_size}")
    sources = as_sources(images, recursive)
    missing = [isinstance(s, (str, os.PathLike)) and not os.path.isfile(s) for s in sources]
    if all(missing):  # nothing to classify: report without loading the model
        return [Classification(source_name(s, i), (), str(model), error=f"{source_name(s, i)}: no such file")
                for i, s in enumerate(sources)]
    loaded = load_model(model)
    spec = loaded.spec
    names = loaded.class_names
    transform = make_transform(spec.input_size, spec.resize, spec.interpolation, tta)
    predict = _compiled_predict(loaded.model)
    draft = max(spec.resize or 0, *spec.input_size)
    results: list[Classification | None] = [None] * len(sources)
    pending: list[tuple[int, np.ndarray]] = []
    done = 0

    def flush() -> None:
        nonlocal done
        crops_per_image = pending[0][1].shape[0]
        batch = np.concatenate([crops for _, crops in pending]).astype(np.float32)
        padded_size = batch_size * crops_per_image if len(sources) > batch_size else len(batch)
        probabilities = _as_probabilities(_predict_padded(predict, batch, padded_size))
        probabilities = probabilities.reshape(len(pending), crops_per_image, -1).mean(axis=1)
        for (index, _), probs in zip(pending, probabilities):
            results[index] = Classification(source_name(sources[index], index), top_k_predictions(probs, names, top_k), spec.name)
        done += len(pending)
        pending.clear()
        if on_progress:
            on_progress(done, len(sources))

    items = iter_images(sources, workers=workers or min(4, os.cpu_count() or 2), draft=draft, transform=transform)
    for index, item in enumerate(items):
        if not item.ok:
            results[index] = Classification(source_name(sources[index], index), (), spec.name, error=item.error)
            done += 1
            continue
        pending.append((index, item.image))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    if on_progress:
        on_progress(len(sources), len(sources))
    return [r for r in results if r is not None]


def _compiled_predict(model):
    """A traced inference function (one graph per batch shape) without ``predict``'s per-call overhead."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def predict(batch):
        return model(batch, training=False)

    return lambda batch: np.asarray(predict(tf.convert_to_tensor(batch)))


def _predict_padded(predict, batch: np.ndarray, size: int) -> np.ndarray:
    """Pad the last, short batch to ``size`` so the graph is traced once."""
    count = len(batch)
    if count < size:
        batch = np.concatenate([batch, np.zeros((size - count, *batch.shape[1:]), batch.dtype)])
    return predict(batch)[:count]
