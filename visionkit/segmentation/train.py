"""Train a U-Net on image/mask pairs: split, augment, fit (resumable), save, and score the held-out images.

The run folder gets ``config.json``, ``history.csv`` + ``curves.png`` (per epoch: loss, and the held-out
loss / mIoU / per-class IoU on images resized to the training scale), ``model.keras`` + ``model.json`` (the
LAST epoch's weights: no epoch is picked on the held-out images, so their scores stay honest),
``report.json`` and ``confusion.png`` (held-out scores at the masks' full resolution), ``train.txt``/``val.txt``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import numpy as np

from visionkit._compat import renamed_keywords
from visionkit.core.errors import UsageError
from visionkit.core.training import TrainConfig
from visionkit.segmentation.config import (ARCH_CLASSIC, DEFAULT_ARCH, DEFAULT_OUTPUT, DEFAULT_TRAINING, HEADS,
                                           SegmentConfig)
from visionkit.segmentation.results import SegmentationRun

def check_config(config: SegmentConfig) -> None:
    from visionkit.segmentation.losses import parse_loss  # noqa: F401  (imports keras; only called when training)

    if config.arch != ARCH_CLASSIC and not config.arch.startswith("unet-"):
        raise UsageError(f"unknown arch {config.arch!r}; use 'unet' (classic) or 'unet-BACKBONE' (e.g. {DEFAULT_ARCH})")
    if config.head not in HEADS:
        raise UsageError(f"unknown head {config.head!r}; choose one of {', '.join(HEADS)}")
    if config.image_size < 0 or config.crop < 32:
        raise UsageError(f"image size must be >= 0 and crop >= 32, received {config.image_size} and {config.crop}")
    if config.crop % multiple_of(config):
        raise UsageError(f"crop {config.crop} must be a multiple of {multiple_of(config)} for {config.arch} "
                         f"(depth {config.depth})")
    if not 0 < config.val_fraction < 1:
        raise UsageError(f"validation fraction must be between 0 and 1, received {config.val_fraction}")
    parse_loss(config.loss)


def multiple_of(config: SegmentConfig) -> int:
    return 2 ** config.depth if config.arch == ARCH_CLASSIC else 32


def class_weight_values(text: str, counts: np.ndarray) -> list[float] | None:
    """Per-class loss weights: ``auto`` is median frequency balancing, w_c = median(f) / f_c
    (Eigen & Fergus, ICCV 2015, section 4), from the training pixels ``counts``; or explicit ``w0,w1,...``."""
    if not text:
        return None
    if text == "auto":
        frequency = counts / max(1, counts.sum())
        present = frequency[frequency > 0]
        return [float(np.median(present) / f) if f > 0 else 0.0 for f in frequency]
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"class weights {text!r}: give 'auto' or numbers like '1,4'") from None
    if len(values) != len(counts) or min(values) < 0:
        raise UsageError(f"class weights {text!r}: need {len(counts)} non-negative numbers, one per class")
    return values


def build_model(config: SegmentConfig, num_classes: int, weights: str | None = "default"):
    """The classic U-Net or a backbone U-Net as ``config`` describes (inputs of any multiple of the stride)."""
    from visionkit.segmentation import model as unet

    if config.arch == ARCH_CLASSIC:
        return unet.unet((None, None, 3), num_classes, config.depth, config.base_filters, head=config.head)
    return unet.unet_backbone(config.arch[len("unet-"):], (None, None, 3), num_classes,
                              freeze_encoder=config.freeze_encoder, head=config.head, weights=weights)


def _validation_callback(batches, loss, names):
    import keras

    from visionkit.segmentation import metrics as seg_metrics

    class ValidationScores(keras.callbacks.Callback):
        """Held-out loss, mIoU and per-class IoU each epoch (one pass; written before history and early stopping)."""

        def on_epoch_end(self, epoch, logs=None):
            matrix = np.zeros((len(names), len(names)), np.int64)
            total, count = 0.0, 0
            for index in range(len(batches)):
                x, y = batches[index]
                probs = np.asarray(self.model.predict_on_batch(x))
                total += float(loss(y, probs)) * len(x)
                count += len(x)
                predicted = (probs[..., 0] > 0.5).astype(np.int64) if probs.shape[-1] == 1 else probs.argmax(-1)
                matrix += seg_metrics.confusion_matrix(y, predicted, len(names))
            if logs is not None:
                logs["val_loss"] = total / max(1, count)
                logs["val_miou"] = seg_metrics.mean_iou(matrix)
                for name, iou in zip(names, seg_metrics.class_iou(matrix)):
                    logs[f"val_iou_{name.replace(' ', '_')}"] = float(iou)

    return ValidationScores()


def _saved_settings(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not path.is_file():
        raise UsageError(f"{run_dir}: no config.json to resume from")
    return json.loads(path.read_text())


def train(data: str | os.PathLike, output: str | os.PathLike = DEFAULT_OUTPUT, config: SegmentConfig = SegmentConfig(),
          training: TrainConfig = DEFAULT_TRAINING, classes: str | None = None, class_file: str | None = None,
          skip_unmasked: bool = False, resume: bool = False, quiet: bool = False,
          on_progress: Callable[[int, int], None] | None = None, **renamed) -> SegmentationRun:
    """Train on ``data`` (``images/`` + ``masks/``), hold out ``config.val_fraction`` (seeded), save and score.

    ``resume`` continues the run in ``output`` from its last epoch with the settings saved there.
    Returns a :class:`visionkit.segmentation.results.SegmentationRun` (``out=`` is the old name of ``output``).
    """
    if renamed:
        unknown = set(renamed) - {"out"}
        if unknown:
            raise TypeError(f"train_segmenter() got unexpected keyword argument(s) {', '.join(sorted(unknown))}")
        output = renamed_keywords(renamed, {"out": "output"}, "train_segmenter")["output"]
    from visionkit.core import training as tr
    from visionkit.core.callbacks import fit, history_columns, read_history, training_callbacks
    from visionkit.core.writers import write_json_atomic
    from visionkit.segmentation.augment import NO_AUGMENT, SegAugment, SegmentationBatches
    from visionkit.segmentation.data import open_dataset, split_indices
    from visionkit.segmentation.losses import SegmentationLoss
    from visionkit.segmentation.metrics import IGNORE_INDEX
    from visionkit.core.registry import ModelSpec
    from visionkit.core.model import save_model
    from visionkit.core.viz import plot_curves
    from visionkit.segmentation.val import evaluate

    started = time.monotonic()
    if resume:
        run_dir = tr.prepare_run_dir(output, resume=True)
        saved = _saved_settings(run_dir)
        config, training = SegmentConfig(**saved["segment"]), TrainConfig(**saved["training"])
        classes, class_file, skip_unmasked = saved["classes"], saved["class_file"], saved["skip_unmasked"]
    check_config(config)
    tr.check_config(training)
    tr.seed_everything(training.seed, training.deterministic)
    dataset = open_dataset(data, classes, class_file, skip_unmasked=skip_unmasked, on_progress=on_progress)
    train_idx, val_idx = split_indices(len(dataset.pairs), config.val_fraction, training.seed)
    train_set, val_set = dataset.subset(train_idx), dataset.subset(val_idx)
    names = list(dataset.class_names)
    weights = class_weight_values(config.class_weights, train_set.pixel_counts.sum(axis=0))
    settings = {"data": str(data), "classes": classes, "class_file": str(class_file) if class_file else None,
                "skip_unmasked": skip_unmasked, "segment": asdict(config), "training": training.to_dict(),
                "class_names": names, "class_weights": weights, "class_map": dataset.class_map.describe()}
    if not resume:  # made once the data set is read: bad masks leave no empty run folder for the next run to reuse
        run_dir = tr.prepare_run_dir(output)
    write_json_atomic(run_dir / "config.json", settings)
    for name, subset in (("train.txt", train_set), ("val.txt", val_set)):
        (run_dir / name).write_text("".join(f"{stem}\n" for stem in subset.stems()))
    long_side = config.image_size or None
    multiple = multiple_of(config)
    augment = SegAugment() if config.augment else replace(NO_AUGMENT)
    train_batches = SegmentationBatches(train_set, training.batch_size, long_side, config.crop, augment,
                                        multiple, training.seed)
    val_batches = SegmentationBatches(val_set, training.batch_size if long_side else 1, long_side, config.crop,
                                      None, multiple, training.seed)
    model = build_model(config, len(names))
    loss = SegmentationLoss(config.loss, weights, IGNORE_INDEX, config.focal_gamma)
    model.compile(optimizer=tr.optimizer_from_config(training, len(train_batches)), loss=loss)
    callbacks = training_callbacks(run_dir, training.patience, plot=False, epoch_lines=not quiet)
    callbacks.insert(1, _validation_callback(val_batches, loss, names))
    resumed_from = tr.resume_epoch(run_dir) if resume else None
    fit(model, train_batches, training.epochs, callbacks, verbose=0)
    spec = ModelSpec(name=f"{config.arch} ({Path(data).name})", task="segment", builder="visionkit.segmentation.model",
                     description=f"{config.arch} trained by visionkit segment train on {data}",
                     input_size=(config.crop, config.crop))
    extra = {"task": "segment", "arch": config.arch, "long_side": long_side, "multiple": multiple,
             "head": config.head, "loss": config.loss, "class_map": dataset.class_map.to_dict(),
             "train_stems": train_set.stems(), "val_stems": val_set.stems(), "epochs": training.epochs}
    columns = history_columns(read_history(run_dir / tr.HISTORY_FILE))
    if columns.get("val_miou"):  # drawn once at the end: drawing every epoch costs more than a tiny model's epoch
        curves = {k: columns[k] for k in ("loss", "val_loss", "val_miou") if k in columns}
        curves["miou"] = [float("nan")] * len(curves["val_miou"])  # no training-set mIoU: only the held-out line
        plot_curves(curves, run_dir / tr.CURVES_FILE, title="segmentation")
    model_path = run_dir / "model.keras"
    save_model(model, model_path, spec, names, extra)
    report = evaluate(str(model_path), data, subset="val", skip_unmasked=True, output=run_dir)  # report.json, confusion.png
    return SegmentationRun(str(run_dir), str(model_path), report, training.epochs, resumed_from,
                           time.monotonic() - started)
