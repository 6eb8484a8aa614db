"""Train a face encoder with the triplet loss, and calibrate a verification threshold on labelled pairs.

Training (FaceNet, Schroff et al. 2015): faces are aligned once (MTCNN + similarity transform, cached), batches
hold P identities × K images (§3.2), triplets are mined online inside each batch (semi-hard negatives), the
loss is max(d(A, P) − d(A, N) + α, 0). The encoder is an ImageNet-pretrained registry backbone with a 128-d
L2-normalised head (:func:`visionkit.faces.model.face_encoder`): first the head alone, then also the last
layers of the backbone at a lower, cosine-decayed rate. Some identities can be held out (never seen); the run then reports ROC AUC, EER and accuracy on
all pairs of the held-out people and stores the EER threshold in the model's sidecar.

Calibration: ROC curve, AUC, EER, the thresholds at the EER and at a target false-accept rate (scikit-learn),
or with ``method="logistic"`` the course's logistic-regression verifier on |f(x1) − f(x2)|.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from visionkit.faces.data import all_pairs, folder_pairs, identity_folders, read_pairs_csv, split_identities
from visionkit.core.errors import InputError, UsageError
from visionkit.core.results import FaceCalibration

log = logging.getLogger(__name__)

DEFAULT_TARGET_FAR = 1e-3


@dataclass(frozen=True)
class FaceTrainConfig:
    """Defaults of ``visionkit faces train`` (the CLI reads them from here)."""

    backbone: str = "efficientnet_lite0"
    input_size: int = 144
    embedding_dim: int = 128
    grayscale: str = "auto"  # auto: grey-only training data -> the model converts inputs to grey
    feature_stride: int = 16  # where the backbone is cut
    head: str = "spatial"  # spatial (1×1 conv + flatten) or pool (global average)
    head_channels: int = 64
    dropout: float = 0.3
    fine_tune_fraction: float = 0.6  # share of the backbone's last layers trained after the head epochs
    identities_per_batch: int = 8  # P
    images_per_identity: int = 4  # K
    margin: float = 0.2  # α
    head_epochs: int = 10
    epochs: int = 30  # epochs after the head epochs, with the backbone's tail trainable too
    head_learning_rate: float = 1e-3
    learning_rate: float = 1e-4
    schedule: str = "cosine"  # of the tail phase's rate: cosine (to 0) or constant
    holdout: int = 0
    seed: int = 0
    augment: bool = True


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


# --- evaluation -------------------------------------------------------------------------------------------------


def pair_evaluation(encodings: np.ndarray, labels: np.ndarray, target_far: float = DEFAULT_TARGET_FAR) -> dict:
    """ROC AUC, EER, thresholds and accuracies on all pairs of ``encodings``; plus a 2-fold identity split:
    the EER threshold chosen on the pairs of one half of the identities, accuracy measured on the other half."""
    from visionkit.faces.metrics import accuracy_at, pair_distances, roc_summary

    i, j, same = all_pairs(labels)
    distances = pair_distances(encodings[i], encodings[j])
    summary = roc_summary(distances, same, target_far)
    result = {"pairs": int(len(same)), "positives": int(same.sum()), "auc": summary.auc, "eer": summary.eer,
              "threshold_eer": summary.threshold_eer, "accuracy_eer": accuracy_at(distances, same, summary.threshold_eer),
              "threshold_far": summary.threshold_far, "tar_at_far": summary.tar_at_far, "target_far": target_far}
    identities = np.unique(labels)
    if len(identities) >= 4:
        halves = (identities[: len(identities) // 2], identities[len(identities) // 2:])
        accuracies = []
        for fit, test in (halves, halves[::-1]):
            fit_mask, test_mask = np.isin(labels, fit), np.isin(labels, test)
            tau = pair_evaluation_threshold(encodings[fit_mask], labels[fit_mask])
            fi, fj, fsame = all_pairs(labels[test_mask])
            test_distances = pair_distances(encodings[test_mask][fi], encodings[test_mask][fj])
            accuracies.append(accuracy_at(test_distances, fsame, tau))
        result["accuracy_2fold"] = float(np.mean(accuracies))
    return result


def pair_evaluation_threshold(encodings: np.ndarray, labels: np.ndarray) -> float:
    from visionkit.faces.metrics import pair_distances, roc_summary

    i, j, same = all_pairs(labels)
    return roc_summary(pair_distances(encodings[i], encodings[j]), same).threshold_eer


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
    from visionkit.core.training import training_callbacks

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


def train_faces(data: str | os.PathLike, run_dir: str | os.PathLike = "runs/faces", config: FaceTrainConfig = FaceTrainConfig(),
                holdout_names: list[str] | None = None, resume: bool = False, quiet: bool = False,
                on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Train an encoder on ``data`` (a folder per identity); returns the run summary (also ``summary.json``).

    Phase ``head`` trains the head with the backbone frozen, phase ``tail`` also the backbone's last
    ``fine_tune_fraction`` of layers at ``learning_rate``. ``resume`` continues ``run_dir`` with the settings saved
    in its ``config.json`` (the ones given now are ignored). The model is saved as ``<run>/face_encoder.keras`` with
    the EER threshold of the held-out pairs (or of the training pairs when nothing is held out — optimistic, and
    said so in ``threshold_source``).
    """
    from visionkit.faces.model import face_encoder
    from visionkit.faces.predict import FaceEncoder
    from visionkit.core.training import CONFIG_FILE, prepare_run_dir, seed_everything, write_json_atomic

    run = prepare_run_dir(run_dir, resume=resume)
    if resume:
        saved = json.loads((run / CONFIG_FILE).read_text())
        config, holdout_names, data = FaceTrainConfig(**saved["config"]), saved["held_out_identities"], saved["data"]
    if config.margin <= 0 or config.input_size < 32 or config.epochs < 0 or config.head_epochs < 0:
        raise UsageError(f"need margin > 0, input size ≥ 32 and epochs ≥ 0, received {config}")
    if not 0.0 <= config.fine_tune_fraction <= 1.0:
        raise UsageError(f"fine_tune_fraction must lie in [0, 1], received {config.fine_tune_fraction}")
    folder = identity_folders(data, min_images=2)
    train_names, held_names = split_identities(folder.names, holdout_names or config.holdout, config.seed)
    write_json_atomic(run / CONFIG_FILE, {"config": asdict(config), "data": str(data), "held_out_identities": held_names})
    seed_everything(config.seed)
    crops, found, upscaled = aligned_crops(folder.paths, config.input_size, on_progress=on_progress)
    detection = {"images": len(found), "faces_found": int(found.sum()), "found_after_upscaling": int(upscaled.sum())}
    train_mask = found & np.isin(folder.labels, [folder.names.index(n) for n in train_names])
    held_mask = found & np.isin(folder.labels, [folder.names.index(n) for n in held_names])
    train_crops, train_labels = crops[train_mask], folder.labels[train_mask]
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

    encoder = FaceEncoder(model, "trained", (config.input_size, config.input_size), None, "")
    if held_names:
        evaluated_on, crops_eval, labels_eval = "held-out", crops[held_mask], folder.labels[held_mask]
        source = f"EER on all pairs of {len(held_names)} held-out identities of {Path(data).name}"
    else:
        evaluated_on, crops_eval, labels_eval = "training", train_crops, train_labels
        source = f"EER on the training pairs of {Path(data).name} (no identity held out: optimistic)"
    evaluation = pair_evaluation(encoder.encode(crops_eval), labels_eval)
    from visionkit.core.registry import ModelSpec
    from visionkit.core.weights import save_model

    spec = ModelSpec(name="face_encoder", task="face-encoder", builder="visionkit.faces.model:face_encoder",
                     description=f"{config.backbone} + {config.embedding_dim}-d triplet-loss head, trained on {Path(data).name}",
                     input_size=(config.input_size, config.input_size), options={**options, "backbone_weights": "none"})
    summary = {"config": asdict(config), "grayscale": grey, "train_identities": train_names,
               "held_out_identities": held_names, "detection": detection, "evaluated_on": evaluated_on,
               "evaluation": evaluation, "threshold": evaluation["threshold_eer"], "threshold_source": source}
    clean = face_encoder(**{**options, "input_shape": size, "backbone_weights": "none"})  # no optimizer state saved
    by_path = {weight.path: weight for weight in model.weights}
    if len(by_path) != len(model.weights) or len(clean.weights) != len(model.weights):
        raise RuntimeError("weight paths of the trained encoder are not unique; cannot copy them for saving")
    for weight in clean.weights:
        weight.assign(by_path[weight.path])
    save_model(clean, run / "face_encoder.keras", spec, [], extra=summary)
    write_json_atomic(run / "summary.json", summary)
    return {**summary, "model": str(run / "face_encoder.keras"), "run_dir": str(run)}


# --- calibration ------------------------------------------------------------------------------------------------


def _pairs(source: str | os.PathLike, identities: list[str] | None = None):
    path = Path(source)
    if path.is_dir():
        folder = identity_folders(path)
        return folder_pairs(folder.subset(identities) if identities else folder)
    if identities:
        raise UsageError("identities= selects sub-folders of an identity folder, not rows of a pairs CSV")
    if path.is_file():
        return read_pairs_csv(path)
    raise InputError(f"{path}: no such pairs CSV or identity folder")


def calibrate(pairs: str | os.PathLike, model="facenet_att_lite0", target_far: float = DEFAULT_TARGET_FAR,
              method: str = "distance", roc_png: str | os.PathLike | None = "roc.png", save_threshold: str | None = None,
              identities: list[str] | None = None, on_progress: Callable[[int, int], None] | None = None) -> FaceCalibration:
    """Measure an encoder on labelled pairs (a CSV ``a,b,same`` or a folder per identity → all pairs).

    ``identities`` restricts a folder to those sub-folders (e.g. the people held out of training). Images
    without a face are left out (counted). ``save_threshold`` ("eer" or "far") writes that threshold into
    a ``.keras`` model's sidecar so that verify uses it; ``method="logistic"`` fits the logistic verifier on
    |f(x1) − f(x2)| (5-fold cross-validated accuracy and AUC reported) and saves it beside the model.
    """
    from visionkit.faces.metrics import accuracy_at, pair_distances, roc_summary
    from visionkit.faces.predict import METHODS, embed, load_encoder, verifier_paths

    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not 0.0 < target_far < 1.0:
        raise UsageError(f"target false-accept rate must lie in (0, 1), received {target_far}")
    if save_threshold not in (None, "eer", "far"):
        raise UsageError(f"save_threshold must be 'eer' or 'far', received {save_threshold!r}")
    listed = _pairs(pairs, identities)
    encoder = load_encoder(model)
    images = sorted({p.a for p in listed} | {p.b for p in listed})
    encoded = {r.source: r.encodings[0] for r in embed(images, encoder, on_progress=on_progress) if r.ok}
    usable = [p for p in listed if p.a in encoded and p.b in encoded]
    if not usable:
        raise InputError(f"{pairs}: no pair has a face found in both images")
    a = np.stack([encoded[p.a] for p in usable])
    b = np.stack([encoded[p.b] for p in usable])
    same = np.array([p.same for p in usable])
    distances = pair_distances(a, b)
    try:
        summary = roc_summary(distances, same, target_far)
    except ValueError as error:
        raise InputError(f"{pairs}: {error}") from None
    fields = dict(model=encoder.name, pairs=len(usable), positives=int(same.sum()), negatives=int((~same).sum()),
                  auc=summary.auc, eer=summary.eer, threshold_eer=summary.threshold_eer,
                  accuracy_eer=accuracy_at(distances, same, summary.threshold_eer), target_far=target_far,
                  threshold_far=summary.threshold_far, tar_at_far=summary.tar_at_far,
                  accuracy_far=accuracy_at(distances, same, summary.threshold_far),
                  images_without_face=len(images) - len(encoded), method=method)
    if roc_png:
        from visionkit.core.viz import plot_roc

        eer_point = (float(np.interp(summary.threshold_eer, summary.thresholds, summary.fpr)),
                     float(np.interp(summary.threshold_eer, summary.thresholds, summary.tpr)))
        plot_roc(summary.fpr, summary.tpr, roc_png, auc=summary.auc,
                 marks={f"EER τ={summary.threshold_eer:.3f}": eer_point,
                        f"FAR≤{target_far:g} τ={summary.threshold_far:.3f}": (summary.far_at_far, summary.tar_at_far)})
        fields["roc_png"] = str(roc_png)
    if method == "logistic":
        fields.update(_fit_logistic(np.abs(a - b), same, encoder, verifier_paths(encoder)))
    if save_threshold:
        fields["saved_threshold"] = _save_threshold(encoder, fields[f"threshold_{save_threshold}"], save_threshold, str(pairs))
    return FaceCalibration(**fields)


def _fit_logistic(features: np.ndarray, same: np.ndarray, encoder, paths) -> dict:
    """LogisticRegression on |f(x1) − f(x2)| (balanced classes), 5-fold CV scores, saved as JSON (no pickle)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_validate

    from visionkit.core.training import write_json_atomic

    classifier = LogisticRegression(class_weight="balanced", max_iter=2000)
    folds = StratifiedKFold(n_splits=min(5, int(same.sum()), int((~same).sum())), shuffle=True, random_state=0)
    if folds.n_splits < 2:
        raise InputError("the logistic verifier needs at least 2 same-person and 2 different-person pairs")
    scores = cross_validate(classifier, features, same, cv=folds, scoring=("accuracy", "roc_auc"))
    classifier.fit(features, same)
    data = {"model": encoder.name, "coef": classifier.coef_[0].tolist(), "intercept": float(classifier.intercept_[0]),
            "features": "abs(f(x1) - f(x2))", "cv_accuracy": float(scores["test_accuracy"].mean()),
            "cv_auc": float(scores["test_roc_auc"].mean()), "pairs": int(len(same))}
    for path in paths:
        try:
            write_json_atomic(path, data)
            return {"logistic_auc": data["cv_auc"], "logistic_accuracy": data["cv_accuracy"], "logistic_path": str(path)}
        except OSError:
            continue
    raise InputError(f"could not write the logistic verifier to any of {', '.join(map(str, paths))}")


def _save_threshold(encoder, threshold: float, which: str, pairs: str) -> str:
    from visionkit.core.weights import sidecar_path

    if encoder.path is None or encoder.path.suffix != ".keras":
        raise UsageError(f"--save-threshold writes into a .keras model's sidecar; {encoder.name!r} is not one "
                         "(pass --threshold to verify instead)")
    path = sidecar_path(encoder.path)
    meta = json.loads(path.read_text()) if path.is_file() else {"spec": {}, "class_names": []}
    meta.setdefault("extra", {}).update(threshold=float(threshold), threshold_source=f"{which.upper()} on {pairs}")
    from visionkit.core.writers import write_text_atomic

    try:
        write_text_atomic(path, json.dumps(meta, indent=2))
    except OSError as error:
        raise InputError(f"cannot write the threshold into {path} ({error.strerror}); copy the model and its .json "
                         "somewhere writable and pass that .keras path") from None
    encoder.threshold, encoder.threshold_source = float(threshold), f"{which.upper()} on {pairs}"
    return str(path)


__all__ = ["FaceTrainConfig", "train_faces", "calibrate", "aligned_crops", "pair_evaluation", "DEFAULT_TARGET_FAR"]
