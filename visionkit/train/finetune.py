"""``visionkit finetune``: transfer learning from a registry backbone, or training a zoo model from scratch,
on a class-folder dataset; one run folder with the model, history, curves and the evaluation report.

Run folder: ``model.keras`` (+ ``model.json`` sidecar: class names, preprocessing, errors), ``config.json``,
``history.csv``, ``curves.png``, ``report.json`` / ``report.md`` / ``confusion.png`` / ``misclassified.csv``
(on the test split, else dev), ``backup*/`` checkpoints while training (removed when a phase completes).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Callable

from visionkit.core.errors import DatasetError, UsageError
from visionkit.core.training import TrainConfig
from visionkit.train.config import CLASS_WEIGHTS, DEFAULT_OUTPUT, FinetuneOptions
from visionkit.train.results import TrainingRun
from visionkit.train.run import run

log = logging.getLogger(__name__)

def _resolve(options: FinetuneOptions, config: TrainConfig):
    """Check the options against each other; returns (spec, pretrained, freeze)."""
    from visionkit.train.augment import parse_augment
    from visionkit.core.registry import get_spec
    from visionkit.train.evaluate import check_human_error
    from visionkit.train.config import HEADS
    from visionkit.train.model import parse_freeze
    from visionkit.core.training import check_config

    check_config(config)
    check_human_error(options.human_error)
    parse_augment(options.augment)
    spec = get_spec(options.base)
    weights = {"imagenet": "pretrained", "default": "pretrained"}.get(options.weights, options.weights)
    if weights not in ("pretrained", "none"):
        raise UsageError(f"--weights takes pretrained (alias imagenet) or none, received {options.weights!r}")
    pretrained = weights == "pretrained"
    if pretrained and spec.weights.source == "none":
        raise UsageError(f"{spec.name!r} is an architecture without pretrained weights; train it from scratch "
                         "with --weights none")
    if options.head not in HEADS:
        raise UsageError(f"--head takes {', '.join(HEADS)}, received {options.head!r}")
    freeze = parse_freeze(options.freeze)
    if not pretrained:
        if options.head != "softmax" or options.cache_features or options.fine_tune_epochs:
            raise UsageError("--weights none trains the whole network: --head logreg|svm, --cache-features and "
                             "--fine-tune-epochs need a pretrained backbone")
        freeze = "none"
    if (options.head != "softmax" or options.cache_features) and freeze != "all":
        raise UsageError(f"--cache-features and --head {options.head} need the whole backbone frozen (--freeze all), "
                         f"received --freeze {options.freeze}")
    if options.augment and (options.cache_features or options.head != "softmax") and not options.fine_tune_epochs:
        raise UsageError("augmentation cannot change features that are computed once (--cache-features, --head "
                         f"{options.head}); drop --augment, or add --fine-tune-epochs (phase two trains on images)")
    if options.class_weight not in CLASS_WEIGHTS:
        raise UsageError(f"--class-weight takes {' or '.join(CLASS_WEIGHTS)}, received {options.class_weight!r}")
    return spec, pretrained, freeze


def _saved_settings(run_dir: Path) -> tuple[FinetuneOptions, TrainConfig]:
    saved = json.loads((run_dir / "config.json").read_text())
    options = saved["options"]
    options["augment"] = tuple(options.get("augment") or ())
    if options.get("input_size"):
        options["input_size"] = tuple(options["input_size"])
    return FinetuneOptions(**options), TrainConfig(**saved["train"])


def finetune(data: str | os.PathLike, output: str | os.PathLike = DEFAULT_OUTPUT, resume: bool = False,
             quiet: bool = False, on_progress: Callable[[int, int], None] | None = None, **settings) -> TrainingRun:
    """Train a classifier on ``data/<class>/*`` (or ``data/train``, ``data/dev``[, ``data/test``]) and evaluate it.

    ``settings`` are the fields of :class:`FinetuneOptions` (base, weights, freeze, head, cache_features, dropout,
    l2, init, augment, input_size, dev_fraction, test_fraction, train_dev_fraction, class_weight, fine_tune_epochs,
    unfreeze, fine_tune_lr, human_error, top_k) and of :class:`visionkit.core.training.TrainConfig` (epochs, batch_size,
    optimizer, learning_rate, momentum, beta_1, beta_2, epsilon, rho, schedule, decay, decay_rate, step_epochs,
    min_lr_fraction, patience, seed, deterministic, mixed_precision, distribute). With ``resume`` the run in
    ``output`` continues from its last checkpoint, with the settings it was started with.
    Returns a :class:`visionkit.train.results.TrainingRun`.
    """
    from visionkit.train.augment import parse_augment
    from visionkit.train.data import make_splits
    from visionkit.core.training import prepare_run_dir
    from visionkit.core.writers import write_json_atomic

    option_fields = set(FinetuneOptions.__dataclass_fields__) - {"data"}
    train_fields = set(TrainConfig.__dataclass_fields__)
    unknown = set(settings) - option_fields - train_fields
    if unknown:
        raise UsageError(f"unknown finetune setting(s): {', '.join(sorted(unknown))}")
    if resume:
        run_dir = prepare_run_dir(output, resume=True)
        options, config = _saved_settings(run_dir)
        if Path(options.data).resolve() != Path(data).resolve():
            raise UsageError(f"{run_dir} was trained on {options.data}, not {data}; resume with the same data")
    else:
        chosen = {k: v for k, v in settings.items() if k in option_fields}
        chosen["augment"] = parse_augment(chosen.get("augment"))
        options = FinetuneOptions(data=str(data), **chosen)
        config = TrainConfig(**{k: v for k, v in settings.items() if k in train_fields})
    resolved = _resolve(options, config)
    splits = make_splits(options.data, options.dev_fraction, options.test_fraction, options.train_dev_fraction,
                         config.seed)
    if not len(splits.dev):
        raise DatasetError(f"{options.data}: the dev split is empty; raise --dev or add images")
    if not resume:  # made once the data set is read: a bad one leaves no empty run folder for the next run to reuse
        run_dir = prepare_run_dir(output)
    write_json_atomic(run_dir / "config.json", {"options": dataclasses.asdict(options), "train": config.to_dict()})
    return run(options, config, splits, run_dir, resume=resume, quiet=quiet, on_progress=on_progress,
               resolved=resolved, started=time.monotonic())
