"""Detector evaluation: AP per class at IoU 0.5 and 0.5:0.95 on a labelled data set, mAP, precision-recall curves.

Classes are matched by name between the model and the data (a person detector on COCO data is judged on the
persons), ignoring case, spaces, ``_`` and ``-``, and taking the old spellings of darknet's ``coco.names`` and of
Pascal VOC (``motorbike``, ``aeroplane``, ``sofa``, ``tvmonitor``) for COCO's
(:func:`~visionkit.detection.coco.class_key`). ``save`` writes ``metrics.json`` and ``pr_curve.png``, the same files
``detect train`` leaves in its run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from visionkit._compat import renamed_keywords
from visionkit.core.errors import UsageError
from visionkit.core.model import LoadedModel
from visionkit.detection.coco import class_key
from visionkit.detection.config import DEFAULT_IOU, DEFAULT_MAX_DET, EVAL_CONF
from visionkit.detection.detector import load_detector
from visionkit.detection.predict import detect
from visionkit.detection.results import DetectionEvaluation

METRICS_JSON = "metrics.json"
PR_CURVE = "pr_curve.png"


def evaluate(
    model: "str | os.PathLike | LoadedModel",
    data,
    iou: float = DEFAULT_IOU,
    conf: float = EVAL_CONF,
    max_det: int = DEFAULT_MAX_DET,
    pr_curve: str | os.PathLike | None = None,
    data_format: str = "auto",
    on_error: str = "raise",
    on_progress: Callable[[int, int], None] | None = None,
    save: str | os.PathLike | None = None,
    format: str | None = None,
    strict: bool = False,
) -> DetectionEvaluation:
    """AP per class at IoU 0.5, mAP@0.5 and mAP@0.5:0.95 of ``model`` on labelled ``data`` (a path or DetectionData).

    Class names are matched by name between the model and the data set. ``pr_curve``: write the
    precision-recall curves at IoU 0.5 as a PNG there. ``save``: a folder for ``metrics.json`` and
    ``pr_curve.png`` (what ``detect val --save`` and ``detect train`` write). See :mod:`visionkit.detection.metrics`.
    Label files without an image are left out, named in one of the ``notes``; ``strict``: they are an error, as in
    training. ``on_error="skip"`` drops the other label problems too (each named in ``notes``).
    """
    from visionkit.detection.data import DetectionData, load_detection_data
    from visionkit.detection.metrics import evaluate_detections

    if format is not None:
        data_format = renamed_keywords({"format": format}, {"format": "data_format"}, "evaluate_detector")["data_format"]
    if save is not None and pr_curve is None:
        pr_curve = Path(save) / PR_CURVE
    detector = load_detector(model)
    dataset = data if isinstance(data, DetectionData) else load_detection_data(
        data, data_format, detector.class_names, on_error, missing_images="raise" if strict else "skip")
    to_model, notes = class_mapping(dataset.class_names, detector.class_names)
    if notes:
        known = {class_key(m) for m in detector.class_names}
        dataset = dataset.select_classes([n for n in dataset.class_names if class_key(n) in known])
        to_model, _ = class_mapping(dataset.class_names, detector.class_names)
    results = detect([a.image for a in dataset.items], detector, conf=conf, iou=iou, max_det=max_det,
                     on_progress=on_progress)
    predictions, truths = [], []
    for annotation, result in zip(dataset.items, results):
        if not result.ok:
            notes.append(f"skipped {result.error}")
            continue
        predictions.append(result.arrays())
        truths.append((annotation.boxes, to_model[annotation.classes] if len(annotation.classes) else annotation.classes))
    metrics = evaluate_detections(predictions, truths, len(detector.class_names))
    names = detector.class_names
    curve_path = ""
    if pr_curve:
        from visionkit.core.viz import plot_pr

        shown = sorted(metrics.curves, key=lambda c: -metrics.positives[c])[:10]
        plot_pr({names[c]: (*metrics.curves[c], float(metrics.ap_at(0.5)[c])) for c in shown}, pr_curve)
        curve_path = str(pr_curve)
    as_tuple = lambda values: tuple(None if np.isnan(v) else float(v) for v in values)  # noqa: E731
    counted = np.isfinite(metrics.ap).sum(axis=1)
    ap50_95 = np.where(counted > 0, np.nansum(metrics.ap, axis=1) / np.maximum(counted, 1), np.nan)
    evaluation = DetectionEvaluation(
        detector.name, str(dataset.root), len(predictions), tuple(names), tuple(int(p) for p in metrics.positives),
        as_tuple(metrics.ap_at(0.5)), as_tuple(ap50_95), metrics.map50, metrics.map50_95, conf, iou,
        curve_path, tuple(notes + list(dataset.warnings)))
    if save is not None:
        evaluation.save(Path(save) / METRICS_JSON)
    return evaluation


def class_mapping(data_names: Sequence[str], model_names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Data-set class index -> model class index, by :func:`class_key` (-1: unknown to the model), and a note
    about those.

    Boxes of classes the model does not know are left out of the evaluation (a person detector on COCO data is
    judged on the persons); a data set sharing no class with the model is a UsageError.
    """
    lookup = {class_key(name): i for i, name in enumerate(model_names)}
    mapping = np.array([lookup.get(class_key(n), -1) for n in data_names], dtype=np.int64)
    missing = [n for n in data_names if class_key(n) not in lookup]
    if len(missing) == len(data_names):
        raise UsageError(f"the data set shares no class with the model: data {', '.join(list(data_names)[:10])}; "
                         f"model {', '.join(list(model_names)[:10])}")
    notes = [f"left out the boxes of {len(missing)} class(es) the model does not know: {', '.join(missing[:10])}"
             + (" …" if len(missing) > 10 else "")] if missing else []
    return mapping, notes
