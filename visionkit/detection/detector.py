"""Reading a detector: load it through the one model handle, then raw head output -> boxes in original pixels.

A detector is a :class:`visionkit.core.model.LoadedModel` of one of the two output contracts described in
:mod:`visionkit.detection.decode`:

- YOLOv2 (visionkit's own ``yolo_v2``, darknet ``[region]``): one output (batch, S, S, A, 5 + C) and
  ``extra["anchors"]`` (A, 2), the anchors as fractions of the input; softmax class scores;
- YOLOv3/v4 (darknet ``[yolo]``, and detectors fine-tuned from them): one output per head and ``extra["heads"]``
  (per head its anchors as fractions of the input and ``scale_x_y``); logistic class scores unless
  ``class_activation`` says otherwise.

The metadata comes from the model's ``.json`` sidecar (``extra``) or its registry entry (``options``).
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
        if "anchors" in model.extra or "heads" in model.extra:
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
    return replace(loaded, **_decoding(loaded, os.fspath(model)))


def _decoding(loaded: LoadedModel, name: str) -> dict:
    """The class names and ``extra`` a loaded detector needs to be decoded (see the module docstring)."""
    recorded = {**loaded.spec.options, **loaded.extra}
    shapes = loaded.model.output_shape
    shapes = shapes if isinstance(shapes, list) else [shapes]
    heads = recorded.get("heads")
    if heads:
        if len(heads) != len(shapes):
            raise ModelError(f"{name}: metadata for {len(heads)} detection heads, but the model has {len(shapes)} "
                             f"outputs")
        extra = {"heads": heads, "class_activation": recorded.get("class_activation") or "logistic"}
    else:
        anchors = recorded.get("anchors")
        if not anchors:
            raise ModelError(f"{name}: no anchors recorded with the model (its .json sidecar is missing?)")
        extra = {"anchors": anchors, "class_activation": recorded.get("class_activation") or "softmax"}
    outputs = int(shapes[0][-1]) - 5
    names = list(loaded.class_names) if len(loaded.class_names) == outputs else [str(i) for i in range(outputs)]
    return {"class_names": names, "extra": {**loaded.extra, **extra}}


def is_multi_head(detector: LoadedModel) -> bool:
    """Whether the detector follows the YOLOv3 contract (``heads`` metadata, one output per head)."""
    return bool(detector.extra.get("heads"))


def anchors_of(detector: LoadedModel) -> np.ndarray:
    """A YOLOv2 detector's anchors (A, 2): width and height as fractions of the input."""
    return np.asarray(detector.extra["anchors"], dtype=np.float64)


def raw_outputs(detector: LoadedModel, batch: np.ndarray) -> list:
    """The model's raw output for a batch of letterboxed canvases, one item per image: an array
    (S, S, A, 5 + C) for a YOLOv2 detector, a list of per-head arrays for a YOLOv3-style one."""
    outputs = detector.predict(batch)
    if not is_multi_head(detector):
        return list(outputs)
    outputs = outputs if isinstance(outputs, list) else [outputs]  # Keras unwraps a one-head model's output
    return [[head[i] for head in outputs] for i in range(len(batch))]


def candidates(detector: LoadedModel, raw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's raw output -> every candidate box (N, 4) as fractions of the input, its score and class id."""
    from visionkit.detection.decode import detections, head_detections

    if is_multi_head(detector):
        return head_detections(raw, detector.extra["heads"], detector.extra.get("class_activation", "logistic"))
    return detections(raw, anchors_of(detector))


def postprocess(detector: LoadedModel, raw, geometry, conf: float, iou: float, max_det: int,
                classes: list[int] | None = None, agnostic: bool = False):
    """One image's raw output (an item of :func:`raw_outputs`) -> (boxes (n, 4) in original pixels, scores, class
    ids), best first."""
    from visionkit.detection.nms import non_max_suppression

    boxes, scores, class_ids = candidates(detector, raw)
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
