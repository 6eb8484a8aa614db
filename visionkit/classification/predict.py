"""ImageNet-style classification: load -> resize + centre crop (or 10-crop TTA) -> model -> top-k."""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

from visionkit.classification.config import DEFAULT_BATCH_SIZE, DEFAULT_MODEL, DEFAULT_TOP_K
from visionkit.classification.results import Classification, Prediction
from visionkit.core.errors import UsageError
from visionkit.core.io import ImageSource, as_sources, batched_results, iter_images, source_name
from visionkit.core.preprocess import as_probabilities, make_transform


def top_k_predictions(probabilities: np.ndarray, names: Sequence[str], k: int) -> tuple[Prediction, ...]:
    order = np.argsort(-probabilities)[:k]
    return tuple(Prediction(int(i), names[i] if i < len(names) else str(i), float(probabilities[i])) for i in order)


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
    from visionkit.core.model import load_model

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
    draft = max(spec.resize or 0, *spec.input_size)

    def predict(indices: list[int], crops: list[np.ndarray]) -> list[Classification]:
        probabilities = as_probabilities(loaded.predict(np.concatenate(crops).astype(np.float32)))
        probabilities = probabilities.reshape(len(crops), crops[0].shape[0], -1).mean(axis=1)  # over the crops
        return [Classification(source_name(sources[i], i), top_k_predictions(probs, names, top_k), spec.name)
                for i, probs in zip(indices, probabilities)]

    def failed(index: int, error: str) -> Classification:
        return Classification(source_name(sources[index], index), (), spec.name, error=error)

    items = iter_images(sources, workers=workers or min(4, os.cpu_count() or 2), draft=draft, transform=transform)
    return batched_results(items, len(sources), batch_size, predict, failed, on_progress)
