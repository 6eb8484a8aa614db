"""Bias / variance / data-mismatch diagnosis from error rates, as taught in Ng's *Structuring Machine Learning
Projects* (week 1 "Avoidable bias", "Understanding human-level performance"; week 2 "Bias and variance with
mismatched data distributions").

Errors are fractions in [0, 1]. Human-level error stands in for Bayes error; when it is not given the Bayes
error is taken as 0 and the whole training error counts as avoidable bias (the report says so).

    avoidable bias  = train error      - human-level error
    variance        = train-dev error  - train error      (dev error - train error without a train-dev set)
    data mismatch   = dev error        - train-dev error  (only with a train-dev set)
    dev overfitting = test error       - dev error        (only with a test set)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

#: The course's next steps for each gap.
ADVICE = {
    "avoidable bias": (
        "Train a bigger model (more units or layers, or unfreeze more of the pretrained network)",
        "Train longer or with a better optimizer (momentum, RMSprop, Adam) and a tuned learning rate",
        "Search other architectures / hyperparameters; reduce regularisation if it is strong",
    ),
    "variance": (
        "Get more training data (or augment it: flips, crops, colour shifts)",
        "Regularise: L2 weight decay, dropout, early stopping, data augmentation; freeze more layers",
        "Search other architectures / hyperparameters",
    ),
    "data mismatch": (
        "Do manual error analysis to see how the training and dev/test data differ",
        "Make the training data more like the dev/test data, or collect more data like it "
        "(artificial data synthesis, with care not to overfit a small synthesised subset)",
    ),
    "dev overfitting": (
        "Get a bigger dev set: the model and hyperparameters were tuned to this dev set",
    ),
    "none": (
        "No gap dominates: errors are close to the reference; use error analysis on the misclassified "
        "images to decide what to fix next (label noise, hard sub-classes)",
    ),
}


@dataclass(frozen=True)
class Diagnosis:
    """The measured errors, the gaps between them, the dominant gap and the recommended next steps."""

    errors: dict
    gaps: dict
    dominant: str
    advice: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_text(self) -> str:
        lines = ["errors:"]
        lines += [f"  {name:<14} {value * 100:6.2f} %" for name, value in self.errors.items()]
        lines.append("gaps:")
        lines += [f"  {name:<16} {value * 100:+6.2f} points" for name, value in self.gaps.items()]
        lines.append(f"dominant: {self.dominant}")
        lines += [f"  - {step}" for step in self.advice]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _check_error(name: str, value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} error must be a fraction in [0, 1], received {value}")


def error_gaps(train: float, dev: float, train_dev: float | None = None, human: float | None = None,
               test: float | None = None) -> dict[str, float]:
    """The course's gaps (see the module docstring); a gap is absent when its two errors are not both known."""
    for name, value in (("train", train), ("dev", dev), ("train-dev", train_dev), ("human", human), ("test", test)):
        _check_error(name, value)
    gaps = {"avoidable bias": train - (human or 0.0)}
    if train_dev is not None:
        gaps["variance"] = train_dev - train
        gaps["data mismatch"] = dev - train_dev
    else:
        gaps["variance"] = dev - train
    if test is not None:
        gaps["dev overfitting"] = test - dev
    return gaps


def gap_noise(errors: dict, counts: dict) -> dict[str, float]:
    """Two standard errors of each gap, from the binomial standard error sqrt(p(1-p)/n) of each measured error.

    ``errors`` and ``counts`` are keyed train / train-dev / dev / test; human-level error is taken as exact.
    """
    def variance(name):
        p, n = errors.get(name), counts.get(name)
        return 0.0 if p is None or not n else max(p * (1 - p), 1.0 / n) / n  # 1/n: a floor when p is 0 or 1

    pairs = {"avoidable bias": ("train", None), "variance": ("train-dev" if "train-dev" in errors else "dev", "train"),
             "data mismatch": ("dev", "train-dev"), "dev overfitting": ("test", "dev")}
    return {gap: 2 * math.sqrt(variance(a) + (variance(b) if b else 0.0)) for gap, (a, b) in pairs.items()}


def diagnose(train: float, dev: float, train_dev: float | None = None, human: float | None = None,
             test: float | None = None, tolerance: float = 0.01, counts: dict | None = None) -> Diagnosis:
    """Which gap dominates (the largest, if it exceeds ``tolerance``) and the course's next steps for it.

    ``counts`` (images per split: train, train-dev, dev, test) adds a note when the dominant gap is within two
    standard errors of sampling noise, i.e. when the sets are too small to be sure.
    """
    gaps = error_gaps(train, dev, train_dev, human, test)
    errors = {"human-level": human, "train": train, "train-dev": train_dev, "dev": dev, "test": test}
    errors = {k: v for k, v in errors.items() if v is not None}
    name, size = max(gaps.items(), key=lambda item: item[1])
    dominant = name if size > tolerance else "none"
    notes = []
    if human is None:
        notes.append("no human-level error given: Bayes error taken as 0, so all training error counts as "
                     "avoidable bias (pass --human-error to separate it)")
    if train_dev is None:
        notes.append("no train-dev set: variance and data mismatch cannot be told apart "
                     "(pass --train-dev 0.1 when the dev data may differ from the training data)")
    if counts and dominant != "none":
        measured = {"train": train, "train-dev": train_dev, "dev": dev, "test": test}
        noise = gap_noise({k: v for k, v in measured.items() if v is not None}, counts)[dominant]
        if size < noise:
            notes.append(f"the {dominant} gap ({size * 100:.1f} points) is within sampling noise "
                         f"(±{noise * 100:.1f} points at these set sizes: {', '.join(f'{k} {v}' for k, v in counts.items())}); "
                         "a bigger dev set would make the diagnosis firmer")
    return Diagnosis(errors, gaps, dominant, ADVICE[dominant], tuple(notes))
