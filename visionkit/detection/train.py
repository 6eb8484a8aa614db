"""``visionkit detect train``: split, anchors, letterbox, frozen-backbone phase, fine-tune phase, save, evaluate.

Phase one trains only the head on a frozen pretrained backbone (a high learning rate is safe there); phase two
unfreezes the backbone (BatchNormalization kept frozen: detection batches are small) at a lower, cosine-decayed
rate. Each phase checkpoints every epoch (``visionkit.core.training``: ``BackupAndRestore``, ``history.csv``,
``curves.png``); ``resume=True`` continues a killed run from its last epoch. The run folder ends with
``model.keras`` (+ ``model.json``: classes, anchors, input size), ``metrics.json`` and ``pr_curve.png`` from the
held-out split.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

from visionkit._compat import renamed_keywords
from visionkit.core.errors import UsageError
from visionkit.detection.config import DEFAULT_ANCHORS, DEFAULT_IOU, DEFAULT_OUTPUT, RENAMED, DetectTrainOptions
from visionkit.detection.results import AnchorBoxes, DetectionTrainingRun
from visionkit.detection.val import evaluate

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
PHASE1_WEIGHTS = "phase1.weights.h5"


def _note(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def _split(options: DetectTrainOptions):
    from visionkit.detection.data import load_detection_data

    data = load_detection_data(options.data, options.data_format, on_error=options.on_error)
    if options.val:
        val = load_detection_data(options.val, options.data_format, data.class_names, options.on_error)
        if options.classes:
            data, val = data.select_classes(options.classes), val.select_classes(options.classes)
        if val.class_names != data.class_names:
            raise UsageError(f"validation classes {val.class_names[:5]} differ from training classes {data.class_names[:5]}")
        return data, val
    if options.classes:
        data = data.select_classes(options.classes)
    if len(data) < 5:
        raise UsageError(f"{options.data}: only {len(data)} images; a detector needs more (or give --val)")
    return data.split(options.val_fraction, options.seed)


def train(data: str | os.PathLike, output: str | os.PathLike = DEFAULT_OUTPUT, resume: bool = False,
          quiet: bool = False, on_progress: Callable[[int, int], None] | None = None, **settings) -> DetectionTrainingRun:
    """Train a detector on ``data`` (YOLO txt, VOC XML or COCO JSON). ``settings``: fields of
    :class:`~visionkit.detection.config.DetectTrainOptions` (``data_format``, ``base``, ``input_size``, ``anchors``,
    ``epochs``, ``fine_tune_lr`` …). Returns a :class:`~visionkit.detection.results.DetectionTrainingRun`."""
    import json

    from visionkit.core.model import LoadedModel
    from visionkit.core.training import prepare_run_dir
    from visionkit.core.writers import write_json_atomic

    run_dir = prepare_run_dir(output, resume=resume)
    config_path = run_dir / "config.json"
    if resume:
        if (run_dir / "model.keras").is_file():
            raise UsageError(f"{run_dir}: this run has finished (model.keras is there); start a new run instead")
        saved = json.loads(config_path.read_text())
        if Path(saved["data"]).resolve() != Path(data).resolve():
            raise UsageError(f"{run_dir} was trained on {saved['data']}, not {data}; resume with the same data")
        saved = renamed_keywords(saved, RENAMED, f"{run_dir}/config.json")  # runs started before 0.2
        options = DetectTrainOptions(**{k: v for k, v in saved.items() if k in DetectTrainOptions.__dataclass_fields__})
    else:
        settings = renamed_keywords(settings, RENAMED, "train_detector")
        unknown = set(settings) - set(DetectTrainOptions.__dataclass_fields__)
        if unknown:
            raise UsageError(f"unknown training settings: {', '.join(sorted(unknown))}")
        options = DetectTrainOptions(data=str(data), **{k: v for k, v in settings.items() if v is not None})
    options.check()
    started = time.monotonic()
    train_set, val_set = _split(options)
    _note(quiet, f"train: {train_set.summary()}; held out: {val_set.summary()}")
    for warning in train_set.warnings[:5]:
        _note(quiet, f"note: skipped {warning}")
    anchors, anchor_iou = _anchors(options, train_set)
    if not resume:
        options = DetectTrainOptions(**{**asdict(options), "anchors": anchors})
        write_json_atomic(config_path, asdict(options))
        write_json_atomic(run_dir / "split.json", {"train": [a.image for a in train_set.items],
                                                   "val": [a.image for a in val_set.items]})
    _note(quiet, f"anchors (w, h as fractions of the input): {anchors}; mean IoU of boxes to their best anchor "
                 f"{anchor_iou:.3f}")
    model, epochs_done, resumed_from = _fit(options, train_set, val_set, anchors, run_dir, resume, quiet, on_progress)
    model_path = run_dir / "model.keras"
    spec = _save(model, model_path, options, train_set.class_names, anchors, anchor_iou)
    detector = LoadedModel(model, spec, list(train_set.class_names), {"anchors": anchors}, model_path, str(model_path))
    evaluation = evaluate(detector, val_set, iou=DEFAULT_IOU, save=run_dir)  # metrics.json and pr_curve.png
    _note(quiet, f"held-out mAP@0.5 {evaluation.map50:.4f}, mAP@0.5:0.95 {evaluation.map50_95:.4f} "
                 f"({evaluation.images} images)")
    seconds = time.monotonic() - started
    return DetectionTrainingRun(str(run_dir), str(model_path), evaluation, epochs_done, resumed_from, seconds,
                                tuple(train_set.warnings + val_set.warnings), anchors=tuple(tuple(a) for a in anchors),
                                anchor_iou=anchor_iou)


def _anchors(options: DetectTrainOptions, train_set) -> tuple[list, float]:
    import numpy as np

    from visionkit.detection.anchors import kmeans_anchors, mean_best_iou

    shapes = train_set.box_shapes()
    if isinstance(options.anchors, int):
        found = kmeans_anchors(shapes, options.anchors, seed=options.seed)
    else:
        found = np.asarray(options.anchors, dtype=np.float64).reshape(-1, 2)
    return [[round(float(w), 5), round(float(h), 5)] for w, h in found], mean_best_iou(shapes, found)


def _fit(options, train_set, val_set, anchors, run_dir: Path, resume: bool, quiet: bool, on_progress):
    import json

    from visionkit.detection.pipeline import letterbox_data, make_dataset
    from visionkit.detection.model import set_backbone_trainable, yolo_v2
    from visionkit.detection.loss import YoloLoss
    from visionkit.core.callbacks import fit, training_callbacks
    from visionkit.core.training import make_optimizer, make_schedule, resume_epoch, seed_everything
    from visionkit.core.writers import write_json_atomic

    seed_everything(options.seed)
    size = (options.input_size, options.input_size)
    _note(quiet, f"decoding and letterboxing {len(train_set) + len(val_set)} images to {size[0]}x{size[1]}")
    train_images = letterbox_data(train_set, size, on_progress=on_progress)
    val_images = letterbox_data(val_set, size)
    max_boxes = max([len(b) for b in train_images.boxes + val_images.boxes] + [1])
    train_data = make_dataset(train_images, options.batch_size, augment=options.augment, shuffle=True,
                              seed=options.seed, max_boxes=max_boxes)
    val_data = make_dataset(val_images, options.batch_size, max_boxes=max_boxes)
    steps = max(1, -(-len(train_images) // options.batch_size))
    model = yolo_v2(len(train_set.class_names), anchors, (*size, 3), options.base, head_filters=options.head_filters)
    loss = YoloLoss(anchors, ignore_iou=options.ignore_iou)
    state_path = run_dir / STATE_FILE
    state = json.loads(state_path.read_text()) if resume and state_path.is_file() else {}
    resumed_from = None
    lines = not quiet
    if options.frozen_epochs and state.get("phase1") != "done":
        if resume:
            resumed_from = resume_epoch(run_dir, "backup-frozen")
        _note(quiet, f"phase one: backbone {options.base} frozen, head learning rate {options.learning_rate}")
        set_backbone_trainable(model, False)
        model.compile(make_optimizer("adam", options.learning_rate), loss=loss)
        callbacks = training_callbacks(run_dir, phase="frozen", backup="backup-frozen", epoch_lines=lines)
        fit(model, train_data, options.frozen_epochs, callbacks, validation_data=val_data)
        model.save_weights(run_dir / PHASE1_WEIGHTS)
        state = {"phase1": "done"}
        write_json_atomic(state_path, state)
    elif state.get("phase1") == "done":
        model.load_weights(run_dir / PHASE1_WEIGHTS)
    if options.epochs > options.frozen_epochs:
        if resume and resumed_from is None:
            resumed_from = resume_epoch(run_dir, "backup-finetune") or None
        phase_epochs = options.epochs - options.frozen_epochs
        _note(quiet, f"phase two: backbone unfrozen (BatchNorm frozen), learning rate {options.fine_tune_lr} cosine")
        set_backbone_trainable(model, True)
        schedule = make_schedule("cosine", options.fine_tune_lr, steps, phase_epochs, min_lr_fraction=0.05)
        model.compile(make_optimizer("adam", schedule), loss=loss)
        callbacks = training_callbacks(run_dir, phase="fine-tune", backup="backup-finetune", epoch_lines=lines,
                                       initial_epoch=options.frozen_epochs)
        fit(model, train_data, options.epochs, callbacks, validation_data=val_data, initial_epoch=options.frozen_epochs)
        write_json_atomic(state_path, {**state, "phase2": "done"})
    return model, options.epochs, resumed_from


def _save(model, path: Path, options, class_names: Sequence[str], anchors, anchor_iou: float):
    from visionkit.core.registry import ModelSpec
    from visionkit.core.model import save_model

    spec = ModelSpec(name=path.stem, task="detect", builder="visionkit.detection.model:yolo_v2",
                     description=f"YOLOv2-style detector on {options.base}, trained on {options.data}",
                     input_size=(options.input_size, options.input_size),
                     options={"num_classes": len(class_names), "anchors": anchors, "head_filters": options.head_filters,
                              "backbone": options.base, "input_shape": [options.input_size, options.input_size, 3]})
    save_model(model, path, spec, list(class_names),
               {"anchors": anchors, "anchor_iou": round(anchor_iou, 4), "train_options": asdict(options)})
    return spec


def anchors(data, k: int = DEFAULT_ANCHORS, seed: int = 0, data_format: str = "auto", on_error: str = "raise",
            format: str | None = None) -> AnchorBoxes:
    """k-means anchors (1 - IoU distance) for a data set's boxes, and the mean IoU of each box to its best anchor."""
    from visionkit.detection.data import DetectionData, load_detection_data
    from visionkit.detection.anchors import kmeans_anchors, mean_best_iou

    if format is not None:
        data_format = renamed_keywords({"format": format}, RENAMED, "detection_anchors")["data_format"]
    dataset = data if isinstance(data, DetectionData) else load_detection_data(data, data_format, on_error=on_error)
    shapes = dataset.box_shapes()
    found = kmeans_anchors(shapes, k, seed=seed)
    return AnchorBoxes(str(dataset.root), tuple((round(float(w), 5), round(float(h), 5)) for w, h in found), k,
                       round(mean_best_iou(shapes, found), 4), int(len(shapes)))
