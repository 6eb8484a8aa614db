"""Object detection: load -> letterbox -> model -> decode -> NMS -> boxes in original pixels; evaluation; anchors.

Defaults are defined here once (the CLI reads them). Training lives in :mod:`visionkit.detection.train`,
video in :mod:`visionkit.detection.video`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from visionkit.core.errors import ModelError, UsageError
from visionkit.core.io import ImageSource, as_sources, iter_images, source_name
from visionkit.core.results import Box, DetectionEvaluation, Detections

DEFAULT_MODEL = "yolo_raccoon"
DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.45
DEFAULT_MAX_DET = 300
DEFAULT_BATCH_SIZE = 8
DEFAULT_ANCHORS = 5
#: Evaluation keeps low-scoring boxes so the precision-recall curve reaches high recall.
EVAL_CONF = 0.001


@dataclass
class Detector:
    """A loaded detector: the Keras model and what is needed to read its output."""

    model: object
    name: str
    class_names: list[str]
    anchors: np.ndarray
    input_size: tuple[int, int]
    extra: dict = field(default_factory=dict)
    _predict: Callable | None = None

    def raw(self, batch: np.ndarray) -> np.ndarray:
        """The raw head output for a batch of letterboxed pixels (N, H, W, 3)."""
        if self._predict is None:
            import tensorflow as tf

            model = self.model

            @tf.function(reduce_retracing=True)
            def predict(x):
                return model(x, training=False)

            self._predict = lambda x: np.asarray(predict(tf.convert_to_tensor(x, tf.float32)))
        return self._predict(batch)

    def class_ids(self, classes: Sequence[int | str] | None) -> list[int] | None:
        """Class filter given as indices or names -> indices (UsageError for unknown ones)."""
        if classes is None:
            return None
        ids = []
        lookup = {name.lower(): i for i, name in enumerate(self.class_names)}
        for item in classes:
            text = str(item).strip()
            if text.isdigit() and int(text) < len(self.class_names):
                ids.append(int(text))
            elif text.lower() in lookup:
                ids.append(lookup[text.lower()])
            else:
                raise UsageError(f"unknown class {item!r} for {self.name}; it knows {len(self.class_names)} classes "
                                 f"(0-{len(self.class_names) - 1}): {', '.join(self.class_names[:12])}")
        return ids

    def postprocess(self, raw: np.ndarray, geometry, conf: float, iou: float, max_det: int,
                    classes: list[int] | None = None, agnostic: bool = False):
        """One image's raw output -> (boxes (n, 4) original pixels, scores, class ids), best first."""
        from visionkit.detection.nms import non_max_suppression
        from visionkit.detection.decode import detections

        boxes, scores, class_ids = detections(raw, self.anchors)
        height, width = self.input_size
        pixels = boxes * np.array([width, height, width, height], dtype=np.float64)
        keep = non_max_suppression(pixels, scores, class_ids, conf, iou, max_det, classes, agnostic)
        original = geometry.to_original(pixels[keep])
        sizable = (original[:, 2] > original[:, 0]) & (original[:, 3] > original[:, 1])  # not all in the padding
        keep = keep[sizable]
        return original[sizable], scores[keep], class_ids[keep]

    def to_result(self, source: str, geometry, arrays, frame: int | None = None) -> Detections:
        boxes, scores, class_ids = arrays
        found = tuple(Box(*map(float, box), float(score), int(c), self.label(int(c)))
                      for box, score, c in zip(boxes, scores, class_ids))
        return Detections(source, found, geometry.width, geometry.height, self.name, frame=frame)

    def label(self, class_id: int) -> str:
        return self.class_names[class_id] if class_id < len(self.class_names) else str(class_id)


def load_detector(model: str | os.PathLike) -> Detector:
    """A registry detector name (``visionkit models list --task detect``), the name given to
    ``visionkit models import-darknet``, or a ``.keras`` file from ``detect train``."""
    import visionkit.convert.darknet  # noqa: F401  (registers the darknet layers for loading .keras files)
    import visionkit.detection.model  # noqa: F401  (registers SpaceToDepth)
    from visionkit.convert.darknet import imported_path
    from visionkit.core.weights import load_model

    text = os.fspath(model)
    if not text.endswith(".keras") and os.sep not in text and not Path(text).exists():
        if imported_path(text).is_file():
            model = imported_path(text)  # imported with `visionkit models import-darknet`
        else:
            from visionkit.convert.darknet import registry_detector
            from visionkit.core.registry import get_spec

            spec = get_spec(text)
            if spec.builder == "visionkit.convert.darknet:registry_detector":
                model = registry_detector(spec)  # official darknet weights: downloaded and converted once
    loaded = load_model(model)
    if loaded.spec.task != "detect":
        raise ModelError(f"{model}: is a {loaded.spec.task!r} model, not a detector; pick one from "
                         f"`visionkit models list --task detect` or a .keras file from `visionkit detect train`")
    anchors = loaded.extra.get("anchors") or loaded.spec.options.get("anchors")
    if not anchors:
        raise ModelError(f"{model}: no anchors recorded with the model (its .json sidecar is missing?)")
    shape = loaded.model.output_shape
    names = list(loaded.class_names)
    if len(names) != shape[-1] - 5:
        names = [str(i) for i in range(shape[-1] - 5)]
    size = tuple(int(s) for s in loaded.model.input_shape[1:3])
    return Detector(loaded.model, loaded.spec.name, names, np.asarray(anchors, dtype=np.float64), size, loaded.extra)


def check_thresholds(conf: float, iou: float, max_det: int) -> None:
    if not 0.0 <= conf <= 1.0:
        raise UsageError(f"conf must be in [0, 1], received {conf}")
    if not 0.0 <= iou <= 1.0:
        raise UsageError(f"iou must be in [0, 1], received {iou}")
    if max_det < 1:
        raise UsageError(f"max_det must be at least 1, received {max_det}")


def detect(
    images: ImageSource | Sequence[ImageSource],
    model: str | os.PathLike | Detector = DEFAULT_MODEL,
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
) -> list[Detections]:
    """Detect objects in images (paths, folders, globs, ``.txt`` lists, arrays or bytes); one result per image.

    Boxes come back in pixels of the original image, best first. ``conf``: minimum score (objectness x class
    probability); ``iou``: NMS threshold; ``classes``: keep only these (indices or names); ``agnostic``: NMS across
    classes; ``save``: a folder for annotated copies (boxes, class names, scores drawn). An unreadable input gives
    a result with ``error`` set and the batch goes on.
    """
    from visionkit.detection.boxes import letterbox

    check_thresholds(conf, iou, max_det)
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, received {batch_size}")
    detector = model if isinstance(model, Detector) else load_detector(model)
    wanted = detector.class_ids(classes)
    sources = as_sources(images, recursive)
    results: list[Detections | None] = [None] * len(sources)
    pending: list[tuple[int, np.ndarray, object, np.ndarray | None]] = []
    saved: set = set()
    done = 0

    def flush() -> None:
        nonlocal done
        batch = np.stack([canvas for _, canvas, _, _ in pending]).astype(np.float32)
        if len(batch) < batch_size and len(sources) > batch_size:  # keep one traced shape
            batch = np.concatenate([batch, np.zeros((batch_size - len(batch), *batch.shape[1:]), np.float32)])
        raw = detector.raw(batch)
        for (index, _, geometry, original), output in zip(pending, raw):
            arrays = detector.postprocess(output, geometry, conf, iou, max_det, wanted, agnostic)
            results[index] = detector.to_result(source_name(sources[index], index), geometry, arrays)
            if save is not None:
                _save_annotated(original, results[index], Path(save), index, saved)
        done += len(pending)
        pending.clear()
        if on_progress:
            on_progress(done, len(sources))

    def transform(image):
        return (*letterbox(image, detector.input_size), image if save is not None else None)

    for index, item in enumerate(_decoded(sources, transform, workers)):
        if not item.ok:
            results[index] = Detections(source_name(sources[index], index), model=detector.name, error=item.error)
            done += 1
            continue
        canvas, geometry, original = item.image
        pending.append((index, canvas, geometry, original))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    if on_progress:
        on_progress(len(sources), len(sources))
    return [r for r in results if r is not None]


def _decoded(sources: list, transform, workers: int | None):
    """Decoded, transformed images in order; one image is decoded in this thread (no pool to start)."""
    if len(sources) != 1:
        yield from iter_images(sources, workers=workers or 2, transform=transform)
        return
    from visionkit.core.errors import InputError
    from visionkit.core.io import LoadedImage, load_image

    try:
        yield LoadedImage(source_name(sources[0], 0), transform(load_image(sources[0])))
    except InputError as error:
        yield LoadedImage(source_name(sources[0], 0), error=str(error))


def _save_annotated(image: np.ndarray, result: Detections, folder: Path, index: int, taken: set) -> None:
    from visionkit.core.io import save_image
    from visionkit.detection.output import annotate, unique_path

    name = Path(result.source).name if not result.source.startswith("<") else f"image_{index}.jpg"
    if Path(name).suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"):
        name = Path(name).stem + ".jpg"
    save_image(unique_path(folder, name, taken), annotate(image, result))


def evaluate(
    model: str | os.PathLike | Detector,
    data,
    iou: float = DEFAULT_IOU,
    conf: float = EVAL_CONF,
    max_det: int = DEFAULT_MAX_DET,
    pr_curve: str | os.PathLike | None = None,
    format: str = "auto",
    on_error: str = "raise",
    on_progress: Callable[[int, int], None] | None = None,
) -> DetectionEvaluation:
    """AP per class at IoU 0.5, mAP@0.5 and mAP@0.5:0.95 of ``model`` on labelled ``data`` (a path or DetectionData).

    Class names are matched by name between the model and the data set. ``pr_curve``: write the
    precision-recall curves at IoU 0.5 as a PNG there. See :mod:`visionkit.detection.metrics`.
    """
    from visionkit.detection.data import DetectionData, load_detection_data
    from visionkit.detection.metrics import evaluate_detections

    detector = model if isinstance(model, Detector) else load_detector(model)
    dataset = data if isinstance(data, DetectionData) else load_detection_data(data, format, detector.class_names, on_error)
    to_model, notes = _class_mapping(dataset.class_names, detector.class_names)
    if notes:
        dataset = dataset.select_classes([n for n in dataset.class_names if n.lower() in
                                          {m.lower() for m in detector.class_names}])
        to_model, _ = _class_mapping(dataset.class_names, detector.class_names)
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
    return DetectionEvaluation(
        detector.name, str(dataset.root), len(predictions), tuple(names), tuple(int(p) for p in metrics.positives),
        as_tuple(metrics.ap_at(0.5)), as_tuple(ap50_95), metrics.map50, metrics.map50_95, conf, iou,
        curve_path, tuple(notes + list(dataset.warnings)))


def _class_mapping(data_names: Sequence[str], model_names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Data-set class index -> model class index, by name (-1: unknown to the model), and a note about those.

    Boxes of classes the model does not know are left out of the evaluation (a person detector on COCO data is
    judged on the persons); a data set sharing no class with the model is a UsageError.
    """
    lookup = {name.lower(): i for i, name in enumerate(model_names)}
    mapping = np.array([lookup.get(n.lower(), -1) for n in data_names], dtype=np.int64)
    missing = [n for n in data_names if n.lower() not in lookup]
    if len(missing) == len(data_names):
        raise UsageError(f"the data set shares no class with the model: data {', '.join(list(data_names)[:10])}; "
                         f"model {', '.join(list(model_names)[:10])}")
    notes = [f"left out the boxes of {len(missing)} class(es) the model does not know: {', '.join(missing[:10])}"
             + (" …" if len(missing) > 10 else "")] if missing else []
    return mapping, notes


def anchors(data, k: int = DEFAULT_ANCHORS, seed: int = 0, format: str = "auto", on_error: str = "raise") -> dict:
    """k-means anchors (1 - IoU distance) for a data set's boxes, and the mean IoU of each box to its best anchor."""
    from visionkit.detection.data import DetectionData, load_detection_data
    from visionkit.detection.anchors import kmeans_anchors, mean_best_iou

    dataset = data if isinstance(data, DetectionData) else load_detection_data(data, format, on_error=on_error)
    shapes = dataset.box_shapes()
    found = kmeans_anchors(shapes, k, seed=seed)
    return {"anchors": [[round(float(w), 5), round(float(h), 5)] for w, h in found], "k": k,
            "mean_iou": round(mean_best_iou(shapes, found), 4), "boxes": int(len(shapes)), "data": dataset.root}
