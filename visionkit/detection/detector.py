"""Reading a detector: load it through the one model handle, then raw head output -> boxes in original pixels.

A detector is a :class:`visionkit.core.model.LoadedModel` whose ``extra["anchors"]`` holds the (w, h) anchors as
fractions of the input; its output is S×S×A×(5 + C) (see :mod:`visionkit.detection.model`).
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from visionkit.core.errors import ModelError
from visionkit.core.model import LoadedModel, check_task, is_model_path, load_model
from visionkit.detection.results import Box, Detections


def load_detector(model: "str | os.PathLike | LoadedModel") -> LoadedModel:
    """A registry detector name (``visionkit models list --task detect``), the name given to
    ``visionkit models import-darknet``, a ``.keras`` file from ``detect train``, or an already loaded detector."""
    from visionkit.convert.darknet import imported_path

    if isinstance(model, LoadedModel):
        if "anchors" in model.extra:
            return model
    elif not is_model_path(model):
        if imported_path(os.fspath(model)).is_file():
            model = imported_path(os.fspath(model))  # imported with `visionkit models import-darknet`
        else:
            from visionkit.convert.darknet import registry_detector
            from visionkit.core.registry import get_spec

            spec = get_spec(os.fspath(model))
            if spec.builder == "visionkit.convert.darknet:registry_detector":
                model = registry_detector(spec)  # official darknet weights: downloaded and converted once
    loaded = load_model(model, task="detect")
    check_task(loaded.spec, "detect", os.fspath(model))  # also a file without a sidecar
    anchors = loaded.extra.get("anchors") or loaded.spec.options.get("anchors")
    if not anchors:
        raise ModelError(f"{model}: no anchors recorded with the model (its .json sidecar is missing?)")
    outputs = int(loaded.model.output_shape[-1]) - 5
    names = list(loaded.class_names) if len(loaded.class_names) == outputs else [str(i) for i in range(outputs)]
    return replace(loaded, class_names=names, extra={**loaded.extra, "anchors": anchors})


def anchors_of(detector: LoadedModel) -> np.ndarray:
    """The detector's anchors (A, 2): width and height as fractions of the input."""
    return np.asarray(detector.extra["anchors"], dtype=np.float64)


def postprocess(detector: LoadedModel, raw: np.ndarray, geometry, conf: float, iou: float, max_det: int,
                classes: list[int] | None = None, agnostic: bool = False):
    """One image's raw output -> (boxes (n, 4) in original pixels, scores, class ids), best first."""
    from visionkit.detection.decode import detections
    from visionkit.detection.nms import non_max_suppression

    boxes, scores, class_ids = detections(raw, anchors_of(detector))
    height, width = detector.input_size
    pixels = boxes * np.array([width, height, width, height], dtype=np.float64)
    keep = non_max_suppression(pixels, scores, class_ids, conf, iou, max_det, classes, agnostic)
    original = geometry.to_original(pixels[keep])
    sizable = (original[:, 2] > original[:, 0]) & (original[:, 3] > original[:, 1])  # not all in the padding
    keep = keep[sizable]
    return original[sizable], scores[keep], class_ids[keep]


def to_result(detector: LoadedModel, source: str, geometry, arrays, frame: int | None = None) -> Detections:
    """(boxes, scores, class ids) of one image or frame -> :class:`Detections`."""
    boxes, scores, class_ids = arrays
    found = tuple(Box(*map(float, box), float(score), int(c), detector.label(int(c)))
                  for box, score, c in zip(boxes, scores, class_ids))
    return Detections(source, found, geometry.width, geometry.height, detector.name, frame=frame)
