"""Scoring a segmentation model on image/mask pairs: one confusion matrix over every pixel of the set at the
masks' own resolution (pooled IoU, Dice, pixel accuracy), and the mean of per-image scores."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from visionkit.core.errors import UsageError
from visionkit.core.model import LoadedModel
from visionkit.segmentation.config import DEFAULT_OVERLAP, DEFAULT_TILE, SUBSETS
from visionkit.segmentation.predict import load_segmenter, predict_probabilities
from visionkit.segmentation.results import SegmentationReport

REPORT_JSON = "report.json"
CONFUSION_PNG = "confusion.png"


def evaluate(model: "str | os.PathLike | LoadedModel", data: str | os.PathLike, classes: str | None = None,
             class_file: str | os.PathLike | None = None, subset: str = "all", skip_unmasked: bool = False,
             tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
             on_progress: Callable[[int, int], None] | None = None,
             output: str | os.PathLike | None = None) -> SegmentationReport:
    """Pooled and per-image IoU, Dice and pixel accuracy of ``model`` on the image/mask pairs in ``data``.

    The model's own class map (saved with it) is used unless ``classes`` / ``class_file`` are given.
    ``subset`` ``train`` / ``val`` picks the images of the split recorded in the model when it was trained.
    ``output``: a folder for ``report.json`` and ``confusion.png`` (what ``segment train`` leaves in its run).
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
    report = SegmentationReport(segmenter.name, str(data), len(dataset.pairs), tuple(names),
                                seg_metrics.summarize(pooled, names), seg_metrics.mean_of_image_scores(per_image), subset)
    if output is not None:
        write_report(report, output)
    return report


def write_report(report: SegmentationReport, folder: str | os.PathLike) -> None:
    """``report.json`` and ``confusion.png`` (pooled confusion matrix) into ``folder``."""
    from visionkit.core.viz import plot_confusion

    report.save(Path(folder) / REPORT_JSON)
    plot_confusion(np.array(report.pooled["confusion_matrix"]), report.class_names, Path(folder) / CONFUSION_PNG)
