"""Evaluation report for a classifier on labelled images: accuracy, top-k, per-class precision/recall/F1,
confusion matrix, misclassified files sorted by confidence (error analysis), bias/variance diagnosis.

``visionkit evaluate MODEL DATA`` runs it on any class-folder dataset; ``visionkit finetune`` runs it at the end
of training on its own splits. Files written: ``report.json``, ``report.md``, ``confusion.png``,
``misclassified.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from visionkit.core.errors import DatasetError, UsageError
from visionkit.train.config import DEFAULT_TOP_K, EVAL_BATCH_SIZE
from visionkit.train.results import ClassMetrics, EvaluationReport, Misclassified

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CONFUSION_PNG = "confusion.png"
MISCLASSIFIED_CSV = "misclassified.csv"


def predict_batches(model, pixels: np.ndarray, input_size: Sequence[int], batch_size: int = EVAL_BATCH_SIZE,
                    on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Model outputs for the centre ``input_size`` crops of square uint8 ``pixels`` (N, S, S, 3), batch by batch."""
    from visionkit.core.model import compiled_predict
    from visionkit.train.augment import centre_crop_batch

    height, width = input_size
    run = compiled_predict(model)
    outputs = []
    total = len(pixels)
    for start in range(0, total, batch_size):
        batch = centre_crop_batch(np.asarray(pixels[start:start + batch_size]), height, width).astype(np.float32)
        outputs.append(np.asarray(run(batch), dtype=np.float32))
        if on_progress:
            on_progress(min(start + batch_size, total), total)
    if not outputs:
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    return np.concatenate(outputs)


def top_k_accuracy(labels: np.ndarray, probabilities: np.ndarray, k: int) -> float:
    """Fraction of rows whose true label is among the ``k`` highest scores."""
    top = np.argsort(-probabilities, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1))) if len(labels) else float("nan")


def class_metrics(labels: np.ndarray, predicted: np.ndarray, class_names: Sequence[str]) -> tuple[ClassMetrics, ...]:
    """scikit-learn's per-class precision, recall, F1 and support (0 where undefined)."""
    from sklearn.metrics import precision_recall_fscore_support

    classes = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes,
                                                                     zero_division=0)
    return tuple(ClassMetrics(name, float(p), float(r), float(f), int(s))
                 for name, p, r, f, s in zip(class_names, precision, recall, f1, support))


def misclassified(files: Sequence[str], labels: np.ndarray, probabilities: np.ndarray,
                  class_names: Sequence[str]) -> tuple[Misclassified, ...]:
    """The wrong predictions, most confident first (the ones most worth looking at in error analysis)."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")]
    return tuple(Misclassified(files[i], class_names[labels[i]], class_names[predicted[i]],
                               float(probabilities[i, predicted[i]])) for i in order)


def build_report(model_name: str, split: str, files: Sequence[str], labels: np.ndarray, probabilities: np.ndarray,
                 class_names: Sequence[str], top_k: int = DEFAULT_TOP_K, skipped=(), errors=None,
                 diagnosis=None) -> EvaluationReport:
    """An EvaluationReport from the probabilities of labelled images."""
    from sklearn.metrics import confusion_matrix

    labels = np.asarray(labels, dtype=np.int64)
    predicted = probabilities.argmax(axis=1) if len(labels) else labels
    count = len(labels)
    accuracy = float(np.mean(predicted == labels)) if count else float("nan")
    ks = sorted({k for k in (2, 3, top_k) if 1 < k < len(class_names)})
    matrix = confusion_matrix(labels, predicted, labels=list(range(len(class_names)))) if count else \
        np.zeros((len(class_names),) * 2, np.int64)
    return EvaluationReport(
        model=model_name, split=split, count=count, accuracy=accuracy, class_names=tuple(class_names),
        per_class=class_metrics(labels, predicted, class_names), confusion=tuple(tuple(int(v) for v in r) for r in matrix),
        top_k={k: top_k_accuracy(labels, probabilities, k) for k in ks},
        misclassified=misclassified(files, labels, probabilities, class_names),
        skipped=tuple((str(f), str(r)) for f, r in skipped), errors=dict(errors or {}), diagnosis=diagnosis)


def report_markdown(report: EvaluationReport, shown_errors: int = 20) -> str:
    """The readable report: overall figures, per-class table, diagnosis, worst errors, skipped files."""
    lines = [f"# Evaluation of {report.model}", "", f"- split: {report.split} ({report.count} images)",
             f"- accuracy: {report.accuracy:.4f}"]
    lines += [f"- top-{k} accuracy: {v:.4f}" for k, v in report.top_k.items()]
    lines += ["", "| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {m.label} | {m.precision:.4f} | {m.recall:.4f} | {m.f1:.4f} | {m.support} |" for m in report.per_class]
    if report.errors:
        lines += ["", "## Errors by split", ""]
        lines += [f"- {name}: {value * 100:.2f} %" for name, value in report.errors.items()]
    if report.diagnosis:
        from visionkit.train.diagnosis import Diagnosis

        diagnosis = Diagnosis(**{k: (tuple(v) if k in ("advice", "notes") else v) for k, v in report.diagnosis.items()})
        lines += ["", "## Bias / variance diagnosis", "", "```", diagnosis.to_text(), "```"]
    lines += ["", f"## Misclassified ({len(report.misclassified)}), most confident first", ""]
    if report.misclassified:
        lines += ["| file | true | predicted | confidence |", "|---|---|---|---:|"]
        lines += [f"| {m.source} | {m.true} | {m.predicted} | {m.confidence:.4f} |"
                  for m in report.misclassified[:shown_errors]]
        if len(report.misclassified) > shown_errors:
            lines.append(f"\n… {len(report.misclassified) - shown_errors} more in {MISCLASSIFIED_CSV}")
    else:
        lines.append("none")
    if report.skipped:
        lines += ["", f"## Skipped files ({len(report.skipped)})", ""]
        lines += [f"- {file}: {reason}" for file, reason in report.skipped]
    return "\n".join(lines) + "\n"


def write_report(report: EvaluationReport, folder: str | os.PathLike, prefix: str = "") -> EvaluationReport:
    """Write report.json, report.md, confusion.png and misclassified.csv into ``folder``; returns the report
    with ``files`` filled in."""
    import csv
    import dataclasses
    import io

    from visionkit.core.writers import write_json_atomic
    from visionkit.core.viz import plot_confusion
    from visionkit.core.writers import write_text_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: str(folder / f"{prefix}{name}") for kind, name in
             (("json", REPORT_JSON), ("markdown", REPORT_MD), ("confusion", CONFUSION_PNG),
              ("misclassified", MISCLASSIFIED_CSV))}
    report = dataclasses.replace(report, files=paths)
    plot_confusion(np.asarray(report.confusion), report.class_names, paths["confusion"], normalize=False)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["source", "true", "predicted", "confidence"])
    writer.writeheader()
    writer.writerows(dataclasses.asdict(m) for m in report.misclassified)
    write_text_atomic(paths["misclassified"], buffer.getvalue())
    write_text_atomic(paths["markdown"], report_markdown(report))
    write_json_atomic(paths["json"], report.to_dict())
    return report


def evaluate(model: str, data: str | os.PathLike, output: str | os.PathLike | None = None,
             top_k: int = DEFAULT_TOP_K, batch_size: int = EVAL_BATCH_SIZE, human_error: float | None = None,
             workers: int | None = None, on_progress: Callable[[int, int], None] | None = None) -> EvaluationReport:
    """Evaluate ``model`` (a ``.keras`` file or registry name) on every image under ``data/<class>/``.

    Folder names must be class names of the model. When the model was trained by ``visionkit finetune`` its
    training and train-dev errors are in its sidecar, and the report diagnoses bias, variance and data mismatch
    with ``data`` as the dev set. Corrupt images are skipped and listed. ``output`` receives the report files.
    """
    from visionkit.train.data import decode, scan_class_folders
    from visionkit.train.diagnosis import diagnose
    from visionkit.core.model import load_model

    if top_k < 1 or batch_size < 1:
        raise UsageError(f"top_k and batch_size must be at least 1, received {top_k} and {batch_size}")
    check_human_error(human_error)
    loaded = load_model(model)
    names = list(loaded.class_names)
    files = scan_class_folders(data, class_names=names)
    spec = loaded.spec
    size = max(spec.resize or 0, *spec.input_size)
    decoded = decode(files, size, spec.interpolation, workers=workers)
    if not len(decoded.files):
        raise DatasetError(f"{data}: none of the {len(files)} images could be read")
    probabilities = predict_batches(loaded.model, decoded.pixels, spec.input_size, batch_size, on_progress)
    probabilities = as_probabilities(probabilities)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == decoded.labels))
    trained = (loaded.extra or {}).get("errors", {})
    errors = {k: v for k, v in trained.items() if k in ("train", "train-dev")}
    errors["evaluated"] = 1.0 - accuracy
    diagnosis = None
    if "train" in trained:
        diagnosis = diagnose(trained["train"], 1.0 - accuracy, trained.get("train-dev"), human_error).to_dict()
    report = build_report(str(model), str(data), decoded.files, decoded.labels, probabilities, names, top_k,
                          decoded.skipped + [(f, "not an image file") for f in files.ignored], errors, diagnosis)
    return write_report(report, output) if output else report


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Rows that already sum to one are kept; logits are softmaxed."""
    from visionkit.core.preprocess import as_probabilities as softmax_unless_probabilities

    return softmax_unless_probabilities(outputs).astype(np.float32) if len(outputs) else outputs


def check_human_error(value: float | None) -> None:
    if value is not None and not 0 <= value < 1:
        raise UsageError(f"--human-error is a fraction in [0, 1) (0.02 for 2 %), received {value}")
