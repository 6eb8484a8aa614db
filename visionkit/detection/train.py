"""``visionkit detect train``: split, anchors, letterbox, frozen-backbone phase, fine-tune phase, save, evaluate.

Phase one trains only the head on a frozen pretrained backbone (a high learning rate is safe there); phase two
unfreezes the backbone (BatchNormalization kept frozen: detection batches are small) at a lower, cosine-decayed
rate. With ``from_model`` (``--from yolov3_tiny_coco``) the network is that darknet detector instead, re-headed for
the data's classes (:mod:`visionkit.detection.transfer`) and trained with the YOLOv3 loss
(:func:`visionkit.detection.loss.head_losses`): phase one trains only the heads' last convolutions, phase two every
layer from ``freeze`` on. Each phase checkpoints every epoch (``visionkit.core.training``: ``BackupAndRestore``, ``history.csv``,
``curves.png``); ``resume=True`` continues a killed run from its last epoch. The run folder ends with
``model.keras`` (+ ``model.json``: classes, anchors, input size), ``metrics.json`` and ``pr_curve.png`` from the
held-out split.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
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

    if resume:
        run_dir = prepare_run_dir(output, resume=True)
        if (run_dir / "model.keras").is_file():
            raise UsageError(f"{run_dir}: this run has finished (model.keras is there); start a new run instead")
        saved = json.loads((run_dir / "config.json").read_text())
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
    start = _from_detector(options)
    if start is not None and not options.input_size:
        options = DetectTrainOptions(**{**asdict(options), "input_size": start.input_size[0]})
    train_set, val_set = _split(options)
    if start is not None and options.keep_classes:
        from visionkit.detection.transfer import to_model_classes

        train_set, val_set = (to_model_classes(d, start.class_names) for d in (train_set, val_set))
    _note(quiet, f"train: {train_set.summary()}; held out: {val_set.summary()}")
    for warning in train_set.warnings[:5]:
        _note(quiet, f"note: skipped {warning}")
    if len(train_set.warnings) > 5:
        _note(quiet, f"note: … and {len(train_set.warnings) - 5} more (all in the run's notes)")
    anchors, anchor_iou = _anchors(options, train_set, start)
    if not resume:  # the folder is made once the data set is read: bad labels leave no empty one for the next run
        run_dir = prepare_run_dir(output)
        options = DetectTrainOptions(**{**asdict(options), "anchors": anchors})
        write_json_atomic(run_dir / "config.json", asdict(options))
        write_json_atomic(run_dir / "split.json", {"train": [a.image for a in train_set.items],
                                                   "val": [a.image for a in val_set.items]})
    _note(quiet, f"anchors (w, h as fractions of the input): {anchors}; mean IoU of boxes to their best anchor "
                 f"{anchor_iou:.3f}")
    network = _network(options, train_set.class_names, anchors, start)
    model, epochs_done, resumed_from = _fit(options, network, train_set, val_set, run_dir, resume, quiet, on_progress)
    model_path = run_dir / "model.keras"
    spec, extra = _save(model, model_path, options, network, train_set.class_names, anchors, anchor_iou)
    detector = LoadedModel(model, spec, list(train_set.class_names), extra, model_path, str(model_path))
    # metrics.json and pr_curve.png; the loader's notes were shown above and are the run's notes, not repeated there
    evaluation = evaluate(detector, replace(val_set, warnings=[]), iou=DEFAULT_IOU, save=run_dir)
    _note(quiet, f"held-out mAP@0.5 {evaluation.map50:.4f}, mAP@0.5:0.95 {evaluation.map50_95:.4f} "
                 f"({evaluation.images} images)")
    seconds = time.monotonic() - started
    return DetectionTrainingRun(str(run_dir), str(model_path), evaluation, epochs_done, resumed_from, seconds,
                                tuple(dict.fromkeys(train_set.warnings + val_set.warnings)), anchors=tuple(tuple(a) for a in anchors),
                                anchor_iou=anchor_iou)


def _from_detector(options: DetectTrainOptions):
    """The darknet detector to fine-tune (``from_model``), loaded once; None for a new yolo_v2."""
    if not options.from_model:
        return None
    from visionkit.detection.detector import load_detector
    from visionkit.detection.transfer import check_from_model

    detector = load_detector(options.from_model)
    check_from_model(detector, options.from_model)
    return detector


def _anchors(options: DetectTrainOptions, train_set, start) -> tuple[list, float]:
    """The anchors (a flat list of (w, h) fractions of the input; with ``from_model`` all heads' in head order)
    and the mean IoU of the training boxes to their best anchor."""
    import numpy as np

    from visionkit.detection.anchors import kmeans_anchors, mean_best_iou

    shapes = train_set.box_shapes()
    if not isinstance(options.anchors, int):
        found = np.asarray(options.anchors, dtype=np.float64).reshape(-1, 2)
    elif start is None:
        found = kmeans_anchors(shapes, options.anchors, seed=options.seed)
    elif options.refit_anchors:
        from visionkit.detection.transfer import fit_head_anchors

        found = np.concatenate(fit_head_anchors(shapes, start.extra["heads"], seed=options.seed))
    else:
        found = np.concatenate([h["anchors"] for h in start.extra["heads"]])  # the model's own, kept
    return [[round(float(w), 5), round(float(h), 5)] for w, h in found], mean_best_iou(shapes, found)


@dataclass
class _Network:
    """What the two training phases need: the model, its loss(es), how to freeze for each phase, what to save."""

    model: object
    loss: object
    heads: list | None = None  # with from_model: the decoding metadata of the outputs
    head_only: Callable[[], object] | None = None
    fine_tune: Callable[[], object] | None = None
    describe: tuple[str, str] = ("", "")
    start: object = None


def _network(options: DetectTrainOptions, class_names, anchors, start) -> _Network:
    from visionkit.detection.loss import YoloLoss, head_losses
    from visionkit.detection.model import set_backbone_trainable, yolo_v2

    size = (options.size, options.size)
    if start is None:
        model = yolo_v2(len(class_names), anchors, (*size, 3), options.base, head_filters=options.head_filters)
        return _Network(model, YoloLoss(anchors, ignore_iou=options.ignore),
                        head_only=lambda: set_backbone_trainable(model, False),
                        fine_tune=lambda: set_backbone_trainable(model, True),
                        describe=(f"backbone {options.base} frozen", "backbone unfrozen (BatchNorm frozen)"))
    from visionkit.detection.transfer import frozen_indices, parse_freeze, set_trainable, split_anchors, start_from

    heads = start.extra["heads"]
    begun = start_from(start, options.from_model, size, None if options.keep_classes else len(class_names),
                       split_anchors(anchors, heads), seed=options.seed)
    losses = head_losses(begun.heads, options.ignore)
    freeze = parse_freeze(options.freeze)
    frozen = frozen_indices(begun, freeze)
    kept = f"darknet layers {min(frozen)}-{max(frozen)} frozen" if frozen else "nothing frozen"
    return _Network(begun.model, losses if len(losses) > 1 else losses[0], begun.heads,
                    head_only=lambda: set_trainable(begun, frozen_indices(begun, "all")),
                    fine_tune=lambda: set_trainable(begun, frozen),
                    describe=(f"{options.from_model}: only the heads' last convolutions "
                              f"({', '.join(begun.head_convs)}) train",
                              f"{options.from_model} from layer {max(frozen) + 1 if frozen else 0} on ({kept}, "
                              f"--freeze {options.freeze})"),
                    start=begun)


def _fit(options, network: _Network, train_set, val_set, run_dir: Path, resume: bool, quiet: bool, on_progress):
    import json

    from visionkit.detection.pipeline import letterbox_data, make_dataset
    from visionkit.core.callbacks import fit, training_callbacks
    from visionkit.core.training import make_optimizer, make_schedule, resume_epoch, seed_everything
    from visionkit.core.writers import write_json_atomic

    seed_everything(options.seed)
    size = (options.size, options.size)
    _note(quiet, f"decoding and letterboxing {len(train_set) + len(val_set)} images to {size[0]}x{size[1]}")
    train_images = letterbox_data(train_set, size, on_progress=on_progress)
    val_images = letterbox_data(val_set, size)
    max_boxes = max([len(b) for b in train_images.boxes + val_images.boxes] + [1])
    train_data = make_dataset(train_images, options.batch_size, augment=options.augment, shuffle=True,
                              seed=options.seed, max_boxes=max_boxes)
    val_data = make_dataset(val_images, options.batch_size, max_boxes=max_boxes)
    outputs = len(network.loss) if isinstance(network.loss, list) else 1
    if outputs > 1:  # every head's loss reads the same targets
        train_data, val_data = (d.map(lambda x, y: (x, (y,) * outputs)) for d in (train_data, val_data))
    steps = max(1, -(-len(train_images) // options.batch_size))
    model, loss = network.model, network.loss
    state_path = run_dir / STATE_FILE
    state = json.loads(state_path.read_text()) if resume and state_path.is_file() else {}
    resumed_from = None
    lines = not quiet
    if options.frozen_epochs and state.get("phase1") != "done":
        if resume:
            resumed_from = resume_epoch(run_dir, "backup-frozen")
        _note(quiet, f"phase one: {network.describe[0]}, learning rate {options.learning_rate}")
        network.head_only()
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
        _note(quiet, f"phase two: {network.describe[1]}, learning rate {options.fine_tune_lr} cosine")
        network.fine_tune()
        schedule = make_schedule("cosine", options.fine_tune_lr, steps, phase_epochs, min_lr_fraction=0.05)
        model.compile(make_optimizer("adam", schedule), loss=loss)
        callbacks = training_callbacks(run_dir, phase="fine-tune", backup="backup-finetune", epoch_lines=lines,
                                       initial_epoch=options.frozen_epochs)
        fit(model, train_data, options.epochs, callbacks, validation_data=val_data, initial_epoch=options.frozen_epochs)
        write_json_atomic(state_path, {**state, "phase2": "done"})
    return model, options.epochs, resumed_from


def _save(model, path: Path, options, network: _Network, class_names: Sequence[str], anchors, anchor_iou: float):
    from visionkit.core.registry import ModelSpec
    from visionkit.core.model import save_model

    size = [options.size, options.size]
    if network.heads is None:
        spec = ModelSpec(name=path.stem, task="detect", builder="visionkit.detection.model:yolo_v2",
                         description=f"YOLOv2-style detector on {options.base}, trained on {options.data}",
                         input_size=tuple(size),
                         options={"num_classes": len(class_names), "anchors": anchors,
                                  "head_filters": options.head_filters, "backbone": options.base,
                                  "input_shape": [*size, 3]})
        extra = {"anchors": anchors, "anchor_iou": round(anchor_iou, 4), "train_options": asdict(options)}
    else:
        decoding = {"heads": network.heads, "num_classes": len(class_names), "class_activation": "logistic"}
        spec = ModelSpec(name=path.stem, task="detect", builder="",
                         description=f"darknet {options.from_model} fine-tuned on {options.data}",
                         input_size=tuple(size),
                         options={**decoding, "cfg": network.start.cfg, "cfg_sha256": network.start.cfg_sha256})
        extra = {**decoding, "anchor_iou": round(anchor_iou, 4), "from_model": options.from_model,
                 "train_options": asdict(options)}
    save_model(model, path, spec, list(class_names), extra)
    return spec, extra


def anchors(data, k: int = DEFAULT_ANCHORS, seed: int = 0, data_format: str = "auto", on_error: str = "raise",
            format: str | None = None) -> AnchorBoxes:
    """k-means anchors (1 - IoU distance) for a data set's boxes, and the mean IoU of each box to its best anchor."""
    from visionkit.detection.data import DetectionData, load_detection_data
    from visionkit.detection.anchors import kmeans_anchors, mean_best_iou

    if format is not None:
        data_format = renamed_keywords({"format": format}, RENAMED, "detection_anchors")["data_format"]
    dataset = data if isinstance(data, DetectionData) else load_detection_data(data, data_format, on_error=on_error)
    for warning in dataset.warnings:
        log.warning("skipped: %s", warning)
    shapes = dataset.box_shapes()
    found = kmeans_anchors(shapes, k, seed=seed)
    return AnchorBoxes(str(dataset.root), tuple((round(float(w), 5), round(float(h), 5)) for w, h in found), k,
                       round(mean_best_iou(shapes, found), 4), int(len(shapes)))
