"""The body of ``visionkit finetune``: decode, build, train (one or two phases, resumable), save, evaluate.

Called by :func:`visionkit.train.finetune.finetune` after the options were checked, the data set was split and the
run folder was made.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np

from visionkit.core.errors import DatasetError, UsageError
from visionkit.train.config import FEATURES_DIR, PHASE1_WEIGHTS, STATE_FILE, FinetuneOptions
from visionkit.core.training import TrainConfig

LOSS = "sparse_categorical_crossentropy"


def image_dataset(pixels, labels, rows, batch_size: int, input_size, augmenter=None, shuffle: bool = False,
                  seed: int = 0):
    """A tf.data pipeline over ``pixels[rows]`` (uint8 squares): shuffled batches, augmented or centre-cropped."""
    import tensorflow as tf

    from visionkit.train.augment import centre_crop_batch

    rows = np.asarray(rows, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int32)
    size = int(pixels.shape[1])
    height, width = input_size

    def take(positions):
        chosen = rows[positions]
        return np.asarray(pixels[chosen]), labels[chosen]

    data = tf.data.Dataset.range(len(rows))
    if shuffle:
        data = data.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).map(lambda i: tf.numpy_function(take, [i], (tf.uint8, tf.int32)),
                                      num_parallel_calls=tf.data.AUTOTUNE)
    data = data.map(lambda x, y: (tf.ensure_shape(x, (None, size, size, 3)), tf.ensure_shape(y, (None,))))
    if augmenter is not None:
        data = data.map(lambda x, y: (augmenter(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        data = data.map(lambda x, y: (tf.cast(centre_crop_batch(x, height, width), tf.float32), y))
    return data.prefetch(tf.data.AUTOTUNE)


def feature_dataset(features, labels, batch_size: int, shuffle: bool = False, seed: int = 0):
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((features.astype(np.float32), np.asarray(labels, np.int32)))
    if shuffle:
        data = data.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _state(run_dir: Path) -> dict:
    path = run_dir / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _square_size(spec, input_size) -> int:
    """Side of the decoded squares: the spec's resize scaled to this input size (never below the input)."""
    ratio = (spec.resize / min(spec.input_size)) if spec.resize else 1.0
    return max(int(round(min(input_size) * ratio)), *input_size)


def run(options: FinetuneOptions, config: TrainConfig, splits, run_dir: Path, resume: bool, quiet: bool, on_progress,
        resolved, started: float):
    import keras

    from visionkit.train.augment import AugmentConfig, build_augmenter, pca_colour_basis
    from visionkit.train.data import class_weights, decode
    from visionkit.train.results import TrainingRun
    from visionkit.train import model as fm
    from visionkit.core.training import make_strategy, precision_policy, resume_epoch, seed_everything
    from visionkit.core.writers import write_json_atomic

    spec, pretrained, freeze = resolved
    seed_everything(config.seed, config.deterministic)
    names = list(splits.class_names)
    parts = splits.items()
    input_size = tuple(int(v) for v in (options.input_size or spec.input_size))
    size = _square_size(spec, input_size)
    everything = parts[0][1]
    for _, part in parts[1:]:
        everything = everything.concat(part)
    note(quiet, f"{run_dir}: {', '.join(f'{name} {len(part)}' for name, part in parts)} images, "
                f"{len(names)} classes; decoding at {size}x{size}")
    try:
        decoded = decode(everything, size, spec.interpolation, scratch=run_dir / "scratch", on_progress=on_progress)
        rows, start = {}, 0
        for name, part in parts:
            rows[name] = decoded.rows_of(start, start + len(part))
            start += len(part)
        train_labels = decoded.labels[rows["train"]]
        check_training_data(dataclasses.replace(splits.train, labels=train_labels), names)
    except BaseException:
        if not resume:  # nothing trained yet: the new run's folder goes, so that no next run reuses it
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    skipped = decoded.skipped + [(f, "not an image file") for f in splits.ignored]
    for file, reason in decoded.skipped:
        note(quiet, f"skipped: {reason}")
    weights = class_weights(train_labels, len(names)) if options.class_weight == "balanced" else None
    batch = config.batch_size
    steps = max(1, math.ceil(len(rows["train"]) / batch))
    state = _state(run_dir)
    if state.get("complete"):
        raise UsageError(f"{run_dir}: this run has finished (model.keras is there); start a new run instead of --resume")
    input_shape = (*input_size, 3)
    resumed_from = None
    strategy = make_strategy(config.distribute)
    with precision_policy(config.mixed_precision), strategy.scope():
        if pretrained:
            from visionkit.core.model import load_backbone

            backbone = load_backbone(spec.name, input_shape)
            fm.apply_freeze(backbone, freeze)
            head = fm.make_head(len(names), options.dropout, options.l2, options.init)
            model, feature_model = fm.transfer_model(backbone, head, input_shape)
            fm.add_l2(backbone, options.l2)
        else:
            backbone = head = feature_model = None
            model = fm.scratch_model(spec, input_shape, len(names))
            fm.add_l2(model, options.l2)
        features = {}
        if options.cache_features or options.head != "softmax":
            folder = Path(_features_home()) / FEATURES_DIR
            for name, chosen in rows.items():
                key = fm.feature_key(spec.name, input_size, size, [decoded.files[i] for i in chosen])
                features[name], hit = fm.cached_features(feature_model, decoded.pixels[chosen], input_size, key,
                                                         folder, batch)
                note(quiet, f"features for {name}: {'read from cache' if hit else 'computed and cached'} "
                            f"({features[name].shape[1]} per image)")
        epochs_done = 0
        label = "head" if pretrained else "train"
        if state.get("phase1") == "done":
            model.load_weights(str(run_dir / PHASE1_WEIGHTS))
            epochs_done = int(state.get("phase1_epochs", 0))
        elif options.head in ("logreg", "svm"):
            kernel, bias = fm.fit_linear_head(options.head, features["train"], train_labels, len(names), weights,
                                              options.l2, config.seed)
            head.get_layer("head_dense").set_weights([kernel, bias])
        else:
            resumed_from = resume_epoch(run_dir) if resume else None
            if resumed_from:
                note(quiet, f"resuming from the checkpoint after epoch {resumed_from}")
            epochs_done = _fit_phase(keras, config, run_dir, quiet, label, "backup", 0, config.epochs, steps,
                                     config.learning_rate, weights, model, head, features, rows, decoded, input_size,
                                     options, build_augmenter, AugmentConfig, pca_colour_basis)
        if state.get("phase1") != "done":
            model.save_weights(str(run_dir / PHASE1_WEIGHTS))
            state = {"phase1": "done", "phase1_epochs": epochs_done}
            write_json_atomic(run_dir / STATE_FILE, state)
        if options.fine_tune_epochs and state.get("phase2") != "done":
            trainable = fm.unfreeze_top(backbone, options.unfreeze)
            note(quiet, f"phase two: top {trainable} layers of {spec.name} trainable, learning rate "
                        f"{options.fine_tune_lr:g}")
            if resume and resumed_from is None:
                resumed_from = resume_epoch(run_dir, "backup-finetune") or None
                if resumed_from:
                    note(quiet, f"resuming phase two from the checkpoint after epoch {resumed_from}")
            ft_config = dataclasses.replace(config, epochs=options.fine_tune_epochs)
            epochs_done = _fit_phase(keras, ft_config, run_dir, quiet, "fine-tune", "backup-finetune", epochs_done,
                                     epochs_done + options.fine_tune_epochs, steps, options.fine_tune_lr, weights,
                                     model, None, {}, rows, decoded, input_size, options, build_augmenter,
                                     AugmentConfig, pca_colour_basis)
            write_json_atomic(run_dir / STATE_FILE, {**state, "phase2": "done", "epochs": epochs_done})
    from visionkit.train.report import finish

    report = finish(model, head, features if not options.fine_tune_epochs else {}, decoded, rows, names, spec,
                    input_size, size, options, run_dir, skipped, batch)
    write_json_atomic(run_dir / STATE_FILE, {**_state(run_dir), "complete": True, "epochs": epochs_done})
    (run_dir / PHASE1_WEIGHTS).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "scratch", ignore_errors=True)
    notes = tuple(f"skipped {f}: {r}" for f, r in skipped)
    return TrainingRun(str(run_dir), str(run_dir / "model.keras"), report, epochs_done,
                       resumed_from or None, time.monotonic() - started, notes)


def _features_home():
    from visionkit.core.config import cache_dir

    return cache_dir()


def _fit_phase(keras, config, run_dir, quiet, phase, backup, initial_epoch, epochs, steps, learning_rate, weights,
               model, head, features, rows, decoded, input_size, options, build_augmenter, AugmentConfig,
               pca_colour_basis) -> int:
    """Compile and fit one phase with resumable checkpoints; returns the epoch count reached."""
    from visionkit.core.callbacks import fit, read_history, training_callbacks
    from visionkit.core.training import optimizer_from_config, HISTORY_FILE

    optimizer = optimizer_from_config(config, steps, learning_rate=learning_rate, epochs=config.epochs)
    callbacks = training_callbacks(run_dir, patience=config.patience, phase=phase, backup=backup,
                                   epoch_lines=not quiet, initial_epoch=initial_epoch)
    batch = config.batch_size
    if head is not None and features:
        trainer = keras.Sequential([keras.Input((features["train"].shape[1],)), head], name="head_on_features")
        train = feature_dataset(features["train"], decoded.labels[rows["train"]], batch, True, config.seed)
        dev = feature_dataset(features["dev"], decoded.labels[rows["dev"]], batch)
    else:
        trainer = model
        augmenter = None
        if options.augment:
            basis = pca_colour_basis(decoded.pixels[rows["train"]]) if "pca" in options.augment else None
            augmenter = build_augmenter(AugmentConfig(names=tuple(options.augment)), input_size, basis, config.seed)
        train = image_dataset(decoded.pixels, decoded.labels, rows["train"], batch, input_size, augmenter, True,
                              config.seed)
        dev = image_dataset(decoded.pixels, decoded.labels, rows["dev"], batch, input_size)
    trainer.compile(optimizer=optimizer, loss=LOSS, metrics=["accuracy"])
    fit(trainer, train, epochs, callbacks, validation_data=dev, initial_epoch=initial_epoch, class_weight=weights)
    history = read_history(Path(run_dir) / HISTORY_FILE)
    return max([row["epoch"] + 1 for row in history] + [initial_epoch])


def note(quiet: bool, message: str) -> None:
    """A progress note on stderr (silenced by quiet)."""
    if not quiet:
        import sys

        print(message, file=sys.stderr, flush=True)


def check_training_data(train, class_names) -> None:
    """Every class needs at least one readable training image."""
    present = np.bincount(train.labels, minlength=len(class_names))
    missing = [name for name, n in zip(class_names, present) if n == 0]
    if missing:
        raise DatasetError(f"no readable training images for class(es) {', '.join(missing)}; add images or "
                           "lower the dev/test fractions")
