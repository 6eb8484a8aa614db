"""Result types of faces: detected faces, encodings, verification, identification, enrolment, calibration, training."""

from __future__ import annotations

from dataclasses import dataclass, field

from visionkit.core.results import Result, Run


def _rounded(values, digits: int = 2) -> list:
    return [round(float(v), digits) for v in values]


@dataclass(frozen=True)
class DetectedFace:
    """One face: box ``(x1, y1, x2, y2)`` in pixels, detector confidence, and 5 landmarks
    (image-left eye, image-right eye, nose, image-left mouth corner, image-right mouth corner) as (x, y)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...] = ()

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def to_dict(self) -> dict:
        return {"box": _rounded(self.box, 1), "score": round(float(self.score), 4),
                "landmarks": [_rounded(point, 1) for point in self.landmarks]}


@dataclass(frozen=True)
class FaceDetections(Result):
    """The faces found in one image, largest first (``faces`` empty: no face found; ``error``: unreadable)."""

    source: str
    faces: tuple[DetectedFace, ...] = ()
    upscaled: bool = False  # found only after enlarging a small image
    error: str | None = None

    def to_dict(self) -> dict:
        data = {"source": self.source, "faces": [f.to_dict() for f in self.faces], "upscaled": self.upscaled}
        if not self.faces and self.ok:
            data["note"] = "no face found"
        if self.error is not None:
            data["error"] = self.error
        return data

    def to_rows(self) -> list[dict]:
        if not self.ok or not self.faces:
            return [{"source": self.source, "face": "", "box": "", "score": "",
                     "note": "" if not self.ok else "no face found", "error": self.error or ""}]
        return [{"source": self.source, "face": i, "box": " ".join(f"{v:.0f}" for v in f.box), "score": round(f.score, 4),
                 "note": "upscaled" if self.upscaled else "", "error": ""} for i, f in enumerate(self.faces)]


@dataclass(frozen=True)
class FaceEncodings(Result):
    """Encodings of the faces of one image: ``encodings[i]`` (L2-normalised) belongs to ``faces[i]``."""

    source: str
    faces: tuple[DetectedFace, ...] = ()
    encodings: object = None  # np.ndarray (n, d)
    model: str = ""
    error: str | None = None

    def to_dict(self) -> dict:
        data = {"source": self.source, "model": self.model, "faces": [f.to_dict() for f in self.faces],
                "encodings": [] if self.encodings is None else [_rounded(row, 6) for row in self.encodings]}
        if self.error is not None:
            data["error"] = self.error
        return data

    def to_rows(self) -> list[dict]:
        if not self.ok:
            return [{"source": self.source, "face": "", "encoding": "", "error": self.error}]
        return [{"source": self.source, "face": i, "encoding": " ".join(f"{v:.6f}" for v in row), "error": ""}
                for i, row in enumerate(self.encodings)]


@dataclass(frozen=True)
class FaceMatch(Result):
    """Verification of two images: squared distance of their encodings, the decision, and how it was made.

    ``same`` is ``distance <= threshold`` (or, with ``method="logistic"``, ``probability >= 0.5``).
    ``faces_in_a``/``faces_in_b`` count the faces found; the largest one (``face_a``/``face_b``) was used.
    """

    source_a: str
    source_b: str
    distance: float | None = None
    threshold: float | None = None
    same: bool | None = None
    threshold_source: str = ""
    model: str = ""
    method: str = "distance"
    probability: float | None = None
    face_a: DetectedFace | None = None
    face_b: DetectedFace | None = None
    faces_in_a: int = 0
    faces_in_b: int = 0
    error: str | None = None

    @property
    def source(self) -> str:
        return f"{self.source_a} | {self.source_b}"

    def to_dict(self) -> dict:
        data = {k: getattr(self, k) for k in ("source_a", "source_b", "distance", "threshold", "same", "threshold_source",
                                              "model", "method", "probability", "faces_in_a", "faces_in_b")}
        data["face_a"] = self.face_a.to_dict() if self.face_a else None
        data["face_b"] = self.face_b.to_dict() if self.face_b else None
        if self.error is not None:
            data["error"] = self.error
        return data

    def to_rows(self) -> list[dict]:
        return [{"a": self.source_a, "b": self.source_b,
                 "distance": "" if self.distance is None else round(self.distance, 4),
                 "threshold": "" if self.threshold is None else round(self.threshold, 4),
                 "same": "" if self.same is None else ("yes" if self.same else "no"),
                 "probability": "" if self.probability is None else round(self.probability, 4),
                 "faces": f"{self.faces_in_a}/{self.faces_in_b}", "error": self.error or ""}]


@dataclass(frozen=True)
class FaceIdentity(Result):
    """One face of one image matched against an enrolled database: nearest identity, or ``unknown``."""

    source: str
    face_index: int = 0
    face: DetectedFace | None = None
    identity: str | None = None
    distance: float | None = None
    threshold: float | None = None
    nearest: str | None = None  # nearest enrolled identity even when farther than the threshold
    error: str | None = None

    def to_dict(self) -> dict:
        data = {"source": self.source, "face": self.face_index, "identity": self.identity, "distance": self.distance,
                "threshold": self.threshold, "nearest": self.nearest, "box": self.face.to_dict()["box"] if self.face else None}
        if self.error is not None:
            data["error"] = self.error
        return data

    def to_rows(self) -> list[dict]:
        return [{"source": self.source, "face": "" if self.error else self.face_index, "identity": self.identity or "",
                 "distance": "" if self.distance is None else round(self.distance, 4), "nearest": self.nearest or "",
                 "box": " ".join(f"{v:.0f}" for v in self.face.box) if self.face else "", "error": self.error or ""}]


@dataclass(frozen=True)
class EnrolledIdentity(Result):
    """An identity of a face database and how many encodings it holds."""

    name: str
    encodings: int
    added: int = 0  # encodings added by the call that returned this (enrol)
    skipped: tuple[str, ...] = ()  # inputs not enrolled, with the reason
    already_enrolled: tuple[str, ...] = ()  # inputs left out because this identity holds them already

    @property
    def source(self) -> str:
        return self.name

    def to_dict(self) -> dict:
        return {"name": self.name, "encodings": self.encodings, "added": self.added, "skipped": list(self.skipped),
                "already_enrolled": list(self.already_enrolled)}

    def to_rows(self) -> list[dict]:
        return [{"name": self.name, "encodings": self.encodings, "added": self.added, "skipped": len(self.skipped),
                 "already_enrolled": len(self.already_enrolled)}]


@dataclass(frozen=True)
class Reencoded(Result):
    """A face database re-encoded: ``encodings`` replaced, made with ``previous_model`` before and ``model`` now
    (0 replaced when it already held ``model``'s)."""

    database: str
    previous_model: str | None
    model: str
    encodings: int

    @property
    def source(self) -> str:
        return self.database


@dataclass(frozen=True)
class FaceCalibration(Result):
    """ROC summary of a face encoder on labelled pairs, with the thresholds it suggests ("same" iff d ≤ τ)."""

    model: str
    pairs: int
    positives: int
    negatives: int
    auc: float
    eer: float
    threshold_eer: float
    accuracy_eer: float
    target_far: float
    threshold_far: float
    tar_at_far: float
    accuracy_far: float
    images_without_face: int = 0
    threshold_default: float | None = None  # the encoder's default τ, and the accuracy it gives on these pairs
    accuracy_default: float | None = None
    roc_png: str = ""
    method: str = "distance"
    logistic_auc: float | None = None
    logistic_accuracy: float | None = None
    logistic_path: str = ""
    saved_threshold: str = ""

    @property
    def source(self) -> str:
        return self.model

    def to_rows(self) -> list[dict]:
        return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.to_dict().items()}]


@dataclass(frozen=True)
class PairEvaluation(Result):
    """ROC AUC, EER and accuracies of an encoder on all pairs of a set of identities; ``accuracy_2fold``: the EER
    threshold chosen on the pairs of one half of the identities, accuracy measured on the other half (4+ people)."""

    pairs: int
    positives: int
    auc: float
    eer: float
    threshold_eer: float
    accuracy_eer: float
    threshold_far: float
    tar_at_far: float
    target_far: float
    accuracy_2fold: float | None = None

    @property
    def source(self) -> str:
        return f"{self.pairs} pairs"

    def to_dict(self) -> dict:
        data = super().to_dict()
        if self.accuracy_2fold is None:
            del data["accuracy_2fold"]
        return data


@dataclass(frozen=True)
class FaceTrainingRun(Run):
    """A finished ``visionkit faces train`` run; ``report`` is the :class:`PairEvaluation` on the held-out people
    (or on the training people when none was held out: optimistic, and ``threshold_source`` says so)."""

    evaluated_on: str = ""
    detection: dict = field(default_factory=dict)
    threshold: float | None = None
    threshold_source: str = ""
    config: dict = field(default_factory=dict)
    grayscale: bool = False
    train_identities: tuple[str, ...] = ()
    held_out_identities: tuple[str, ...] = ()

    @property
    def evaluation(self) -> PairEvaluation | None:
        return self.report

    def summary(self) -> dict:
        """What ``summary.json`` and the model's sidecar record about the run."""
        return {"config": self.config, "grayscale": self.grayscale, "train_identities": list(self.train_identities),
                "held_out_identities": list(self.held_out_identities), "detection": self.detection,
                "evaluated_on": self.evaluated_on, "evaluation": self.report.to_dict() if self.report else None,
                "threshold": self.threshold, "threshold_source": self.threshold_source}

    def to_dict(self) -> dict:
        return {**self.summary(), "model": self.model_path, **super().to_dict()}

    def __getitem__(self, key: str):
        """``run["model"]``: train_faces returned a dict before 0.2; kept for one release."""
        import warnings

        warnings.warn("train_faces() returns a FaceTrainingRun: use its attributes or to_dict() instead of run[key]",
                      DeprecationWarning, stacklevel=2)
        return self.to_dict()[key]
