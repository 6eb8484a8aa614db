"""Train a face encoder with the triplet loss (FaceNet, Schroff et al. 2015).

Faces are aligned once (MTCNN + similarity transform, cached), batches hold P identities × K images (§3.2),
triplets are mined online inside each batch (semi-hard negatives), the loss is max(d(A, P) − d(A, N) + α, 0).
The encoder is an ImageNet-pretrained registry backbone with a 128-d L2-normalised head
(:func:`visionkit.faces.model.face_encoder`): first the head alone, then also the last layers of the backbone at a
lower, cosine-decayed rate. Some identities can be held out (never seen); the run then reports ROC AUC, EER and
accuracy on all pairs of the held-out people (:mod:`visionkit.faces.calibrate`) and stores the EER threshold in
the model's sidecar.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from visionkit._compat import renamed_keywords
from visionkit.core.errors import UsageError
from visionkit.faces.config import DEFAULT_OUTPUT, FaceTrainConfig
from visionkit.faces.data import check_batches, identity_folders, split_identities
from visionkit.faces.results import FaceTrainingRun

log = logging.getLogger(__name__)


# --- aligned crops (cached) -------------------------------------------------------------------------------------


def _dataset_key(paths, size: int) -> str:
    digest = hashlib.sha256(f"v1|{size}".encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"|{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def aligned_crops(paths, size: int, cache: bool = True, on_progress: Callable[[int, int], None] | None = None):
    """(crops uint8 (n, size, size, 3), found mask (n,), upscaled mask (n,)) — the largest face of each image.

    Images where no face is found get a zero crop and ``found = False`` (callers drop them). Cached in
    ``<cache>/faces/aligned-<key>.npz`` keyed by the files' paths, sizes and modification times.
    """
    from visionkit.core.config import cache_dir
    from visionkit.core.io import iter_images
    from visionkit.faces.predict import align_face, detect_faces
    from visionkit.core.writers import atomic_path

    paths = list(paths)
    cached = cache_dir() / "faces" / f"aligned-{_dataset_key(paths, size)}.npz"
    if cache and cached.is_file():
        with np.load(cached) as data:
            return data["crops"], data["found"], data["upscaled"]
    crops = np.zeros((len(paths), size, size, 3), np.uint8)
    found = np.zeros(len(paths), bool)
    upscaled = np.zeros(len(paths), bool)
    for index, item in enumerate(iter_images(paths)):
        if item.ok:
            faces, upscaled[index] = detect_faces(item.image)
            if faces:
                crops[index] = align_face(item.image, faces[0], (size, size))
                found[index] = True
        else:
            log.warning("%s", item.error)
        if on_progress:
            on_progress(index + 1, len(paths))
    if cache:
        with atomic_path(cached) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, crops=crops, found=found, upscaled=upscaled)
    return crops, found, upscaled


# --- training ---------------------------------------------------------------------------------------------------


def _augmenter(seed: int):
    import keras

    layers = keras.layers
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.03, fill_mode="nearest", seed=seed + 1),  # ±11°
        layers.RandomZoom((-0.1, 0.1), fill_mode="nearest", seed=seed + 2),
        layers.RandomTranslation(0.05, 0.05, fill_mode="nearest", seed=seed + 3),
        layers.RandomContrast(0.3, seed=seed + 4),
        layers.RandomBrightness(0.2, value_range=(0, 255), seed=seed + 5),
    ], name="augment")


def _batches(crops: np.ndarray, labels: np.ndarray, config: FaceTrainConfig, steps: int, epochs: int, seed: int):
    import tensorflow as tf

    from visionkit.faces.data import pk_batches

    indices = np.stack(list(pk_batches(labels, config.identities_per_batch, config.images_per_identity,
                                       steps * epochs, seed)))
    images = tf.constant(crops)
    targets = tf.constant(labels.astype(np.int32))
    dataset = tf.data.Dataset.from_tensor_slices(indices)
    dataset = dataset.map(lambda idx: (tf.cast(tf.gather(images, idx), tf.float32), tf.gather(targets, idx)))
    if config.augment:
        augment = _augmenter(seed)
        dataset = dataset.map(lambda x, y: (tf.clip_by_value(augment(x, training=True), 0.0, 255.0), y),
                              num_parallel_calls=1)
    return dataset.prefetch(2)


def _compile(model, learning_rate, margin: float) -> None:
    """Adam (``learning_rate`` a float or a schedule), the semi-hard triplet loss, and the share of active triplets."""
    import keras

    from visionkit.faces.metrics import active_triplet_fraction, semi_hard_triplet_loss

    def triplet(y_true, y_pred):
        return semi_hard_triplet_loss(y_true, y_pred, margin)

    def active(y_true, y_pred):
        return active_triplet_fraction(y_true, y_pred, margin)

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=triplet, metrics=[active])


def _train_phase(model, run: Path, name: str, fraction: float, learning_rate: float, epochs: int, data, steps: int,
                 config: FaceTrainConfig, quiet: bool) -> None:
    """One phase (``head``: backbone frozen; ``tail``: its last layers too), resumable; skipped when already done.

    Each phase keeps its history and checkpoints in ``run/<name>/`` and ends with ``run/<name>.weights.h5``.
    """
    from visionkit.faces.model import set_trainable_tail
    from visionkit.core.callbacks import training_callbacks

    done = run / f"{name}.weights.h5"
    if done.is_file():
        model.load_weights(done)
        return
    if not epochs:
        return
    set_trainable_tail(model, fraction)
    from visionkit.core.training import make_schedule

    _compile(model, make_schedule(config.schedule if name == "tail" else "constant", learning_rate, steps, epochs),
             config.margin)
    model.fit(data, epochs=epochs, steps_per_epoch=steps, verbose=0,  # one line per epoch on stderr instead
              callbacks=training_callbacks(run / name, phase=name, monitor="loss", epoch_lines=not quiet))
    model.save_weights(done)


def train_faces(data: str | os.PathLike, output: str | os.PathLike = DEFAULT_OUTPUT,
                config: FaceTrainConfig = FaceTrainConfig(), holdout_names: list[str] | None = None,
                resume: bool = False, quiet: bool = False, on_progress: Callable[[int, int], None] | None = None,
                **renamed) -> FaceTrainingRun:
    """Train an encoder on ``data`` (a folder per identity); returns the :class:`FaceTrainingRun` (its summary is
    also ``summary.json``).

    Phase ``head`` trains the head with the backbone frozen, phase ``tail`` also the backbone's last
    ``fine_tune_fraction`` of layers at ``learning_rate``. ``resume`` continues ``output`` with the settings saved
    in its ``config.json`` (the ones given now are ignored). The model is saved as ``<run>/face_encoder.keras`` with
    the EER threshold of the held-out pairs (or of the training pairs when nothing is held out — optimistic, and
    said so in ``threshold_source``). ``run_dir=`` is the old name of ``output``.
    """
    from visionkit.core.model import LoadedModel, save_model
    from visionkit.core.registry import ModelSpec
    from visionkit.core.training import CONFIG_FILE, prepare_run_dir, seed_everything
    from visionkit.core.writers import write_json_atomic
    from visionkit.faces.calibrate import pair_evaluation
    from visionkit.faces.model import face_encoder
    from visionkit.faces.predict import encode

    if renamed:
        unknown = set(renamed) - {"run_dir"}
        if unknown:
            raise TypeError(f"train_faces() got unexpected keyword argument(s) {', '.join(sorted(unknown))}")
        output = renamed_keywords(renamed, {"run_dir": "output"}, "train_faces")["output"]
    started = time.monotonic()
    if resume:
        run = prepare_run_dir(output, resume=True)
        saved = json.loads((run / CONFIG_FILE).read_text())
        config, holdout_names, data = FaceTrainConfig(**saved["config"]), saved["held_out_identities"], saved["data"]
    if config.margin <= 0 or config.input_size < 32 or config.epochs < 0 or config.head_epochs < 0:
        raise UsageError(f"need margin > 0, input size ≥ 32 and epochs ≥ 0, received {config}")
    if not 0.0 <= config.fine_tune_fraction <= 1.0:
        raise UsageError(f"fine_tune_fraction must lie in [0, 1], received {config.fine_tune_fraction}")
    folder = identity_folders(data, min_images=2)
    train_names, held_names = split_identities(folder.names, holdout_names or config.holdout, config.seed)
    seed_everything(config.seed)
    crops, found, upscaled = aligned_crops(folder.paths, config.input_size, on_progress=on_progress)
    detection = {"images": len(found), "faces_found": int(found.sum()), "found_after_upscaling": int(upscaled.sum())}
    train_mask = found & np.isin(folder.labels, [folder.names.index(n) for n in train_names])
    held_mask = found & np.isin(folder.labels, [folder.names.index(n) for n in held_names])
    train_crops, train_labels = crops[train_mask], folder.labels[train_mask]
    check_batches(train_labels, config.identities_per_batch, config.images_per_identity)
    if not resume:  # made once the data set is read: a bad one leaves no empty run folder for the next run to reuse
        run = prepare_run_dir(output)
    write_json_atomic(run / CONFIG_FILE, {"config": asdict(config), "data": str(data), "held_out_identities": held_names})
    grey = config.grayscale == "yes" or (config.grayscale == "auto" and bool(
        np.all(train_crops[..., 0] == train_crops[..., 1]) and np.all(train_crops[..., 1] == train_crops[..., 2])))
    size = (config.input_size, config.input_size, 3)
    options = {"backbone": config.backbone, "input_shape": list(size), "embedding_dim": config.embedding_dim,
               "grayscale": grey, "feature_stride": config.feature_stride, "head": config.head,
               "head_channels": config.head_channels, "dropout": config.dropout}
    model = face_encoder(**{**options, "input_shape": size})
    steps = max(1, int(np.ceil(len(train_crops) / (config.identities_per_batch * config.images_per_identity))))
    for phase, fraction, rate, epochs, seed in (("head", 0.0, config.head_learning_rate, config.head_epochs, config.seed),
                                                ("tail", config.fine_tune_fraction, config.learning_rate, config.epochs,
                                                 config.seed + 1)):
        batches = _batches(train_crops, train_labels, config, steps, max(epochs, 1), seed)
        _train_phase(model, run, phase, fraction, rate, epochs, batches, steps, config, quiet)

    spec = ModelSpec(name="face_encoder", task="face-encoder", builder="visionkit.faces.model:face_encoder",
                     description=f"{config.backbone} + {config.embedding_dim}-d triplet-loss head, trained on {Path(data).name}",
                     input_size=(config.input_size, config.input_size), options={**options, "backbone_weights": "none"})
    encoder = LoadedModel(model, spec, name="trained")
    if held_names:
        evaluated_on, crops_eval, labels_eval = "held-out", crops[held_mask], folder.labels[held_mask]
        source = f"EER on all pairs of {len(held_names)} held-out identities of {Path(data).name}"
    else:
        evaluated_on, crops_eval, labels_eval = "training", train_crops, train_labels
        source = f"EER on the training pairs of {Path(data).name} (no identity held out: optimistic)"
    evaluation = pair_evaluation(encode(encoder, crops_eval), labels_eval)
    model_path = run / "face_encoder.keras"
    result = FaceTrainingRun(str(run), str(model_path), evaluation, config.head_epochs + config.epochs, None,
                             time.monotonic() - started, evaluated_on=evaluated_on, detection=detection,
                             threshold=evaluation.threshold_eer, threshold_source=source, config=asdict(config),
                             grayscale=grey, train_identities=tuple(train_names), held_out_identities=tuple(held_names))
    save_model(model, model_path, spec, [], extra=result.summary())
    write_json_atomic(run / "summary.json", result.summary())
    return result


__all__ = ["FaceTrainConfig", "train_faces", "aligned_crops"]
