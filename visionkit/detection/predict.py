"""Object detection: load -> letterbox -> model -> decode -> NMS -> boxes in original pixels, for images and videos.

Defaults live in :mod:`visionkit.detection.config`. Reading the model's output is :mod:`visionkit.detection.detector`;
video frames go through :mod:`visionkit.detection.video`, evaluation is :mod:`visionkit.detection.val`, training
:mod:`visionkit.detection.train`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from visionkit.core.errors import UsageError
from visionkit.core.io import ImageSource, as_sources, batched_results, iter_images, source_name
from visionkit.core.model import LoadedModel
from visionkit.detection.config import (DEFAULT_BATCH_SIZE, DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET, DEFAULT_MODEL,
                                        check_thresholds)
from visionkit.detection.detector import load_detector, postprocess, raw_outputs, to_result
from visionkit.detection.results import Detections
from visionkit.detection.video import detect_video, is_video


def detect(
    images: ImageSource | Sequence[ImageSource],
    model: "str | os.PathLike | LoadedModel" = DEFAULT_MODEL,
    conf: float = DEFAULT_CONF,
    iou: float = DEFAULT_IOU,
    classes: Sequence[int | str] | None = None,
    max_det: int = DEFAULT_MAX_DET,
    agnostic: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    recursive: bool = False,
    save: str | os.PathLike | None = None,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_video_progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> list[Detections]:
    """Detect objects in images (paths, folders, globs, ``.txt`` lists, arrays or bytes) and video files.

    One result per image, then one per frame of each video (``frame`` set), in that order. Boxes come back in
    pixels of the original image, best first. ``conf``: minimum score (objectness x class probability); ``iou``:
    NMS threshold; ``classes``: keep only these (indices or names); ``agnostic``: NMS across classes; ``save``: a
    folder for annotated copies (boxes, class names, scores drawn; ``<name>.mp4`` for a video).
    ``on_video_progress(path)`` may return a progress callback for that video. An unreadable input gives a result
    with ``error`` set and the batch goes on.
    """
    check_thresholds(conf, iou, max_det)
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, received {batch_size}")
    detector = load_detector(model)
    listed = [images] if isinstance(images, (str, os.PathLike)) else images
    videos = [item for item in listed if is_video(item)] if isinstance(listed, (list, tuple)) else []
    stills = [item for item in listed if not is_video(item)] if videos else images
    results = _detect_images(stills, detector, conf, iou, classes, max_det, agnostic, batch_size, recursive, save,
                             workers, on_progress) if not videos or stills else []
    for video in videos:
        results += detect_video(video, detector, conf=conf, iou=iou, classes=classes, max_det=max_det,
                                agnostic=agnostic, save=save, batch_size=batch_size,
                                on_progress=on_video_progress(os.fspath(video)) if on_video_progress else None)
    return results


def _detect_images(images, detector: LoadedModel, conf, iou, classes, max_det, agnostic, batch_size, recursive, save,
                   workers, on_progress) -> list[Detections]:
    from visionkit.detection.boxes import letterbox

    wanted = detector.class_ids(classes)
    sources = as_sources(images, recursive)
    saved: set = set()

    def predict(indices: list[int], loaded: list) -> list[Detections]:
        raw = raw_outputs(detector, np.stack([canvas for canvas, _, _ in loaded]).astype(np.float32))
        found = []
        for index, (_, geometry, original), output in zip(indices, loaded, raw):
            arrays = postprocess(detector, output, geometry, conf, iou, max_det, wanted, agnostic)
            found.append(to_result(detector, source_name(sources[index], index), geometry, arrays))
            if save is not None:
                _save_annotated(original, found[-1], Path(save), index, saved)
        return found

    def transform(image):
        return (*letterbox(image, detector.input_size), image if save is not None else None)

    def failed(index: int, error: str) -> Detections:
        return Detections(source_name(sources[index], index), model=detector.name, error=error)

    return batched_results(iter_images(sources, workers=workers or 2, transform=transform), len(sources), batch_size,
                           predict, failed, on_progress)


def _save_annotated(image: np.ndarray, result: Detections, folder: Path, index: int, taken: set) -> None:
    from visionkit.core.io import save_image
    from visionkit.detection.output import annotate, unique_path

    name = Path(result.source).name if not result.source.startswith("<") else f"image_{index}.jpg"
    if Path(name).suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"):
        name = Path(name).stem + ".jpg"
    save_image(unique_path(folder, name, taken), annotate(image, result))
