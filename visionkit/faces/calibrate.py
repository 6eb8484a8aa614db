"""Measure a face encoder on labelled pairs and calibrate its verification threshold.

ROC curve, AUC, EER and the thresholds at the EER and at a target false-accept rate (scikit-learn), or with
``method="logistic"`` the course's logistic-regression verifier on |f(x1) − f(x2)|. :func:`pair_evaluation` is
the same measurement on all pairs of a set of identities (what ``faces train`` reports for its held-out people).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from visionkit.core.errors import InputError, UsageError
from visionkit.core.model import LoadedModel
from visionkit.faces.config import DEFAULT_MODEL, DEFAULT_TARGET_FAR, METHODS
from visionkit.faces.data import all_pairs, folder_pairs, identity_folders, read_pairs_csv
from visionkit.faces.encoder import is_registry_encoder, load_encoder, verifier_paths
from visionkit.faces.predict import embed
from visionkit.faces.results import FaceCalibration, PairEvaluation


def pair_evaluation(encodings: np.ndarray, labels: np.ndarray, target_far: float = DEFAULT_TARGET_FAR) -> PairEvaluation:
    """ROC AUC, EER, thresholds and accuracies on all pairs of ``encodings``; plus a 2-fold identity split:
    the EER threshold chosen on the pairs of one half of the identities, accuracy measured on the other half."""
    from visionkit.faces.metrics import accuracy_at, pair_distances, roc_summary

    i, j, same = all_pairs(labels)
    distances = pair_distances(encodings[i], encodings[j])
    summary = roc_summary(distances, same, target_far)
    accuracy_2fold = None
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
        accuracy_2fold = float(np.mean(accuracies))
    return PairEvaluation(int(len(same)), int(same.sum()), summary.auc, summary.eer, summary.threshold_eer,
                          accuracy_at(distances, same, summary.threshold_eer), summary.threshold_far, summary.tar_at_far,
                          target_far, accuracy_2fold)


def pair_evaluation_threshold(encodings: np.ndarray, labels: np.ndarray) -> float:
    from visionkit.faces.metrics import pair_distances, roc_summary

    i, j, same = all_pairs(labels)
    return roc_summary(pair_distances(encodings[i], encodings[j]), same).threshold_eer


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


def calibrate(pairs: str | os.PathLike, model: "str | os.PathLike | LoadedModel" = DEFAULT_MODEL, target_far: float = DEFAULT_TARGET_FAR,
              method: str = "distance", roc_png: str | os.PathLike | None = "roc.png", save_threshold: str | None = None,
              identities: list[str] | None = None, on_progress: Callable[[int, int], None] | None = None) -> FaceCalibration:
    """Measure an encoder on labelled pairs (a CSV ``a,b,same`` or a folder per identity → all pairs).

    ``identities`` restricts a folder to those sub-folders (e.g. the people held out of training). Images
    without a face are left out (counted). The accuracy at the encoder's default threshold is reported too
    (``threshold_default``, ``accuracy_default``). ``save_threshold`` ("eer" or "far") makes that threshold the
    encoder's default: written into a ``.keras`` model's sidecar, or for a registry encoder into the cache folder;
    ``method="logistic"`` fits the logistic verifier on |f(x1) − f(x2)| (5-fold cross-validated accuracy and AUC
    reported) and saves it beside a model file, or in the cache for a registry encoder.
    """
    from visionkit.faces.metrics import accuracy_at, pair_distances, roc_summary

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
    if encoder.extra.get("threshold") is not None:  # how the default τ (before any --save-threshold) does here
        fields.update(threshold_default=float(encoder.extra["threshold"]),
                      accuracy_default=accuracy_at(distances, same, float(encoder.extra["threshold"])))
    if roc_png:
        from visionkit.core.viz import plot_roc

        eer_point = (float(np.interp(summary.threshold_eer, summary.thresholds, summary.fpr)),
                     float(np.interp(summary.threshold_eer, summary.thresholds, summary.tpr)))
        plot_roc(summary.fpr, summary.tpr, roc_png, auc=summary.auc,
                 marks={f"EER τ={summary.threshold_eer:.3f}": eer_point,
                        f"FAR≤{target_far:g} τ={summary.threshold_far:.3f}": (summary.far_at_far, summary.tar_at_far)})
        fields["roc_png"] = str(roc_png)
    if method == "logistic":
        writable = verifier_paths(encoder)[:1] if is_registry_encoder(encoder) else verifier_paths(encoder)  # cache only
        fields.update(_fit_logistic(np.abs(a - b), same, encoder, writable))
    if save_threshold:
        fields["saved_threshold"] = _save_threshold(encoder, fields[f"threshold_{save_threshold}"], save_threshold, str(pairs))
    return FaceCalibration(**fields)


def _fit_logistic(features: np.ndarray, same: np.ndarray, encoder, paths) -> dict:
    """LogisticRegression on |f(x1) − f(x2)| (balanced classes), 5-fold CV scores, saved as JSON (no pickle)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_validate

    from visionkit.core.writers import write_json_atomic

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
    """Make ``threshold`` the encoder's default: in a ``.keras`` file's sidecar, or for a registry encoder in the
    cache (``<cache>/faces/<name>.threshold.json``) — never in the installed package."""
    from visionkit.core.model import sidecar_path
    from visionkit.core.writers import write_text_atomic
    from visionkit.faces.encoder import save_calibration

    source = f"{which.upper()} on {pairs}"
    if is_registry_encoder(encoder):
        path = save_calibration(encoder, threshold, source)
        encoder.extra.update(threshold=float(threshold), threshold_source=f"{source} (saved in {path})")
        return str(path)
    if encoder.path is None or encoder.path.suffix != ".keras":
        raise UsageError(f"--save-threshold writes into a .keras model's sidecar; {encoder.name!r} is not one "
                         "(pass --threshold to verify instead)")
    path = sidecar_path(encoder.path)
    meta = json.loads(path.read_text()) if path.is_file() else {"spec": {}, "class_names": []}
    meta.setdefault("extra", {}).update(threshold=float(threshold), threshold_source=source)
    try:
        write_text_atomic(path, json.dumps(meta, indent=2))
    except OSError as error:
        raise InputError(f"cannot write the threshold into {path} ({error.strerror}); copy the model and its .json "
                         "somewhere writable and pass that .keras path") from None
    encoder.extra.update(threshold=float(threshold), threshold_source=source)
    return str(path)


__all__ = ["calibrate", "pair_evaluation", "DEFAULT_TARGET_FAR"]
