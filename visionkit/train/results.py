"""Result types of classifier training: the evaluation report, the finished run, an export and its check."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from visionkit.core.results import Result, Run


@dataclass(frozen=True)
class Misclassified:
    """One wrongly classified image: its true and predicted class and the model's confidence in the prediction."""

    source: str
    true: str
    predicted: str
    confidence: float


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall, F1 and support of one class."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvaluationReport(Result):
    """Accuracy, top-k, per-class metrics, confusion matrix, errors sorted by confidence, bias/variance diagnosis."""

    model: str
    split: str
    count: int
    accuracy: float
    class_names: tuple[str, ...]
    per_class: tuple[ClassMetrics, ...]
    confusion: tuple[tuple[int, ...], ...]
    top_k: dict = field(default_factory=dict)  # {k: accuracy} for k < number of classes
    misclassified: tuple[Misclassified, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (file, reason) not evaluated
    errors: dict = field(default_factory=dict)  # {"train": …, "train-dev": …, "dev": …, "test": …}
    diagnosis: dict | None = None
    files: dict = field(default_factory=dict)  # written report files

    @property
    def source(self) -> str:
        return self.model

    @property
    def error_rate(self) -> float:
        """1 − accuracy (``error`` is, as on every result, the message of a failure: None here)."""
        return 1.0 - self.accuracy

    def diagnosis_text(self) -> str:
        """The bias / variance / data-mismatch diagnosis as readable lines ('' when there is none)."""
        if not self.diagnosis:
            return ""
        from visionkit.train.diagnosis import Diagnosis

        fields = {k: (tuple(v) if k in ("advice", "notes") else v) for k, v in self.diagnosis.items()}
        return Diagnosis(**fields).to_text()

    def to_dict(self) -> dict:
        return {
            "model": self.model, "split": self.split, "count": self.count, "accuracy": self.accuracy,
            "top_k": {str(k): v for k, v in self.top_k.items()}, "class_names": list(self.class_names),
            "per_class": [asdict(m) for m in self.per_class], "confusion": [list(r) for r in self.confusion],
            "misclassified": [asdict(m) for m in self.misclassified],
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            "errors": self.errors, "diagnosis": self.diagnosis, "files": self.files,
        }

    def to_rows(self) -> list[dict]:
        """One row per class and an overall row."""
        rows = [{"split": self.split, "class": m.label, "precision": round(m.precision, 4), "recall": round(m.recall, 4),
                 "f1": round(m.f1, 4), "support": m.support} for m in self.per_class]
        rows.append({"split": self.split, "class": "(accuracy)", "precision": "", "recall": round(self.accuracy, 4),
                     "f1": "", "support": self.count})
        return rows


@dataclass(frozen=True)
class TrainingRun(Run):
    """A finished ``visionkit finetune`` run; ``report`` is the :class:`EvaluationReport` on its test (else dev) split."""


@dataclass(frozen=True)
class ExportResult(Result):
    """An exported model and how far its predictions are from the Keras model's on the check images."""

    source: str
    path: str
    format: str
    max_difference: float
    checked: int
    same_top1: bool
