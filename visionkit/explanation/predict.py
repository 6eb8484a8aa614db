"""``visionkit.explain``: a Grad-CAM heatmap per image, overlaid on the photo, for any classifier visionkit loads.

Each photo is resized whole to the model's input (not centre-cropped as ``classify`` does), so the map covers every
pixel of it; its top class can therefore differ a little from ``classify``'s on wide or tall photos.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from visionkit.core.errors import UsageError
from visionkit.core.io import ImageSource, as_sources, iter_images, source_name
from visionkit.explanation.config import DEFAULT_ALPHA, DEFAULT_BATCH_SIZE, DEFAULT_MODEL, OVERLAY_SUFFIX
from visionkit.explanation.results import Explanation


def model_view(loaded) -> Callable[[np.ndarray], tuple]:
    """image -> (the image resized to the model's input, the original image): what the model is fed."""
    from visionkit.core.preprocess import resize

    height, width = loaded.input_size
    interpolation = loaded.spec.interpolation or "bilinear"
    return lambda image: (resize(image, height, width, interpolation), image)


def explain(images: ImageSource | Sequence[ImageSource], model=DEFAULT_MODEL, target_class: int | str | None = None,
            layer: str | None = None, output: str | os.PathLike | None = None, save: str | os.PathLike | None = None,
            alpha: float = DEFAULT_ALPHA, batch_size: int = DEFAULT_BATCH_SIZE, recursive: bool = False,
            on_progress: Callable[[int, int], None] | None = None) -> list[Explanation]:
    """Grad-CAM (Selvaraju et al. 2017) of each image for ``target_class`` (a name or index; default: the model's
    top class for that image) at ``layer`` (default: the last convolutional feature map; a path such as
    ``efficientnet_lite0/top_activation`` inside a finetuned model, or a unique layer name).

    ``model`` is a registry classifier, a ``.keras`` file from ``visionkit finetune`` or a LoadedModel. ``output``
    writes the overlay of a single image to that file; ``save`` writes ``<stem>_gradcam.png`` per image into a
    folder. Unreadable inputs give a result with ``error`` set; the batch goes on.
    """
    from visionkit.core.model import load_model
    from visionkit.explanation.layers import find_layer, tapped_model

    if not 0 <= alpha <= 1:
        raise UsageError(f"alpha must be in [0, 1], received {alpha}")
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, received {batch_size}")
    if output is not None and save is not None:
        raise UsageError("give output (one overlay file) or save (a folder of overlays), not both")
    sources = as_sources(images, recursive)
    if output is not None:
        _check_output(output, len(sources))
    loaded = load_model(model, task="classify")
    target = find_layer(loaded.model, layer, loaded.name)
    tapped = tapped_model(loaded.model, target.layer)
    wanted = None if target_class is None else loaded.class_ids([target_class])[0]
    results: list[Explanation | None] = [None] * len(sources)
    pending: list[tuple[int, np.ndarray, np.ndarray]] = []
    taken: set = set()
    done = 0

    def flush() -> None:
        nonlocal done
        batch = np.stack([view for _, view, _ in pending])
        ids = None if wanted is None else [wanted] * len(pending)
        activations, gradients, outputs, chosen = _explained(loaded, tapped, batch, ids)
        for k, (index, _, original) in enumerate(pending):
            result = _result(loaded, target.name, source_name(sources[index], index), activations[k], gradients[k],
                             outputs[k], int(chosen[k]), original.shape[:2])
            results[index] = _write(result, original, alpha, output, save, index, taken)
        done += len(pending)
        pending.clear()
        if on_progress:
            on_progress(done, len(sources))

    for index, item in enumerate(iter_images(sources, workers=2, transform=model_view(loaded))):
        if not item.ok:
            results[index] = Explanation(source_name(sources[index], index), loaded.name, target.name, error=item.error)
            done += 1
            continue
        pending.append((index, *item.image))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    return [r for r in results if r is not None]


def _explained(loaded, tapped, batch, ids):
    from visionkit.core.preprocess import as_probabilities
    from visionkit.explanation.gradcam import activations_and_gradients

    activations, gradients, outputs, chosen = activations_and_gradients(loaded.model, tapped, batch, ids)
    return activations, gradients, as_probabilities(outputs), chosen


def _result(loaded, layer_name, source, activations, gradients, probabilities, class_id, size) -> Explanation:
    from visionkit.explanation.gradcam import gradcam, normalise, peak, upsample

    cam = gradcam(activations, gradients).astype(np.float32)
    heat = normalise(upsample(cam, *size))
    top = int(np.argmax(probabilities))
    return Explanation(source, loaded.name, layer_name, class_id, loaded.label(class_id), float(probabilities[class_id]),
                       loaded.label(top), float(probabilities[top]), cam, tuple(size),
                       peak(heat) if heat.max() > 0 else None)


def _check_output(output, count: int) -> None:
    from visionkit.core.io import IMAGE_EXTENSIONS

    if count != 1:
        raise UsageError(f"output names one file, but {count} images were given; use save=FOLDER (--save) instead")
    if Path(output).suffix.lower() not in IMAGE_EXTENSIONS:
        raise UsageError(f"output {os.fspath(output)!r}: not an image file name; end it in .png or .jpg")


def _write(result: Explanation, image, alpha, output, save, index, taken) -> Explanation:
    """Write the overlay where asked (``output`` file, or a unique ``<stem>_gradcam.png`` in ``save``)."""
    from dataclasses import replace

    from visionkit.core.io import save_image
    from visionkit.explanation.gradcam import overlay

    if output is None and save is None:
        return result
    if output is not None:
        path = Path(output)
    else:
        stem = Path(result.source).stem if not result.source.startswith("<") else f"image_{index}"
        path = Path(save) / f"{stem}{OVERLAY_SUFFIX}"
        number = 2
        while str(path) in taken:
            path = Path(save) / f"{stem}_{number}{OVERLAY_SUFFIX}"
            number += 1
        taken.add(str(path))
    caption = f"{result.label} {result.score:.2f}  ({result.layer})"
    save_image(path, overlay(image, result.heatmap, alpha, caption))
    return replace(result, path=str(path))
