"""Typed results returned by the public verbs; each has ``to_dict()`` for the writers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Prediction:
    """One ranked label: class index, name and probability."""

    index: int
    label: str
    score: float


@dataclass(frozen=True)
class Classification:
    """Top-k labels for one image (``error`` set, ``top`` empty, when it could not be read)."""

    source: str
    top: tuple[Prediction, ...] = ()
    model: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str | None:
        return self.top[0].label if self.top else None

    @property
    def score(self) -> float | None:
        return self.top[0].score if self.top else None

    def to_dict(self) -> dict:
        data = {"source": self.source, "model": self.model, "top": [asdict(p) for p in self.top]}
        if self.error is not None:
            data["error"] = self.error
        return data

    def to_rows(self) -> list[dict]:
        """Flat rows (one per rank) for CSV and tables."""
        if not self.ok:
            return [{"source": self.source, "rank": "", "index": "", "label": "", "score": "", "error": self.error}]
        return [
            {"source": self.source, "rank": rank, "index": p.index, "label": p.label, "score": round(p.score, 6), "error": ""}
            for rank, p in enumerate(self.top, start=1)
        ]


def failed(results) -> list:
    """The results whose input could not be processed."""
    return [r for r in results if getattr(r, "error", None)]


__all__ = ["Prediction", "Classification", "failed", "field"]


# --- model summaries and computational cost (visionkit/ops/cost.py) -------------------------


def format_shape(shape) -> str:
    """``(112, 112, 64)`` -> ``112x112x64`` (``?`` for an unknown size); several outputs joined by ``, ``."""
    if shape is None:
        return ""
    if shape and isinstance(shape[0], (tuple, list)):
        return ", ".join(format_shape(s) for s in shape)
    return "x".join("?" if d is None else str(d) for d in shape)


@dataclass(frozen=True)
class LayerCost:
    """One layer of a model summary: output shape (no batch axis), parameters, multiply-adds (None: unknown)."""

    name: str
    type: str
    output_shape: tuple | None
    params: int
    macs: int | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelSummary:
    """A layer table with totals; MACs follow the convention in :mod:`visionkit.zoo.cost`."""

    model: str
    input_shape: tuple | None
    layers: tuple[LayerCost, ...]
    params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    macs_complete: bool = True

    def to_dict(self) -> dict:
        return {
            "model": self.model, "input_shape": self.input_shape, "params": self.params,
            "trainable_params": self.trainable_params, "non_trainable_params": self.non_trainable_params,
            "macs": self.macs, "macs_complete": self.macs_complete,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_rows(self) -> list[dict]:
        rows = [{"name": layer.name, "type": layer.type, "output_shape": format_shape(layer.output_shape),
                 "params": layer.params,
                 "macs": "?" if layer.macs is None else layer.macs} for layer in self.layers]
        rows.append({"name": "total", "type": "", "output_shape": "", "params": self.params,
                     "macs": self.macs if self.macs_complete else f"{self.macs}+?"})
        return rows


@dataclass(frozen=True)
class ConvCost:
    """One convolution: shapes (H, W, C), parameters (weights + biases) and multiplies (= MACs)."""

    label: str
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    filter_size: int
    stride: int
    padding: str
    filters: int
    params: int
    multiplies: int

    def to_dict(self) -> dict:
        return asdict(self)

    def to_rows(self) -> list[dict]:
        return [{"layer": self.label, "input": format_shape(self.input_shape),
                 "filter": f"{self.filter_size}x{self.filter_size}",
                 "stride": self.stride, "padding": self.padding, "output": format_shape(self.output_shape),
                 "params": self.params, "multiplies": self.multiplies}]


@dataclass(frozen=True)
class BottleneckComparison:
    """An f×f conv on the input (``direct``) vs. a 1×1 ``reduce`` conv followed by the f×f ``conv``."""

    direct: ConvCost
    reduce: ConvCost
    conv: ConvCost

    @property
    def bottleneck_multiplies(self) -> int:
        return self.reduce.multiplies + self.conv.multiplies

    @property
    def ratio(self) -> float:
        """How many times fewer multiplies the bottleneck path needs."""
        return self.direct.multiplies / self.bottleneck_multiplies

    def to_dict(self) -> dict:
        return {"direct": self.direct.to_dict(), "reduce": self.reduce.to_dict(), "conv": self.conv.to_dict(),
                "bottleneck_multiplies": self.bottleneck_multiplies, "ratio": round(self.ratio, 4)}

    def to_rows(self) -> list[dict]:
        rows = self.direct.to_rows() + self.reduce.to_rows() + self.conv.to_rows()
        rows.append({"layer": "bottleneck total", "input": "", "filter": "", "stride": "", "padding": "",
                     "output": format_shape(self.conv.output_shape),
                     "params": self.reduce.params + self.conv.params, "multiplies": self.bottleneck_multiplies})
        return rows


# --- faces (visionkit.faces.predict) -----------------------------------------------------------------------------


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
class FaceDetections:
    """The faces found in one image, largest first (``faces`` empty: no face found; ``error``: unreadable)."""

    source: str
    faces: tuple[DetectedFace, ...] = ()
    upscaled: bool = False  # found only after enlarging a small image
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

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
class FaceEncodings:
    """Encodings of the faces of one image: ``encodings[i]`` (L2-normalised) belongs to ``faces[i]``."""

    source: str
    faces: tuple[DetectedFace, ...] = ()
    encodings: object = None  # np.ndarray (n, d)
    model: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

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
class FaceMatch:
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
    def ok(self) -> bool:
        return self.error is None

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
class FaceIdentity:
    """One face of one image matched against an enrolled database: nearest identity, or ``unknown``."""

    source: str
    face_index: int = 0
    face: DetectedFace | None = None
    identity: str | None = None
    distance: float | None = None
    threshold: float | None = None
    nearest: str | None = None  # nearest enrolled identity even when farther than the threshold
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

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
class EnrolledIdentity:
    """An identity of a face database and how many encodings it holds."""

    name: str
    encodings: int
    added: int = 0  # encodings added by the call that returned this (enrol)
    skipped: tuple[str, ...] = ()  # inputs not enrolled, with the reason

    def to_dict(self) -> dict:
        return {"name": self.name, "encodings": self.encodings, "added": self.added, "skipped": list(self.skipped)}

    def to_rows(self) -> list[dict]:
        return [{"name": self.name, "encodings": self.encodings, "added": self.added, "skipped": len(self.skipped)}]


@dataclass(frozen=True)
class FaceCalibration:
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
    roc_png: str = ""
    method: str = "distance"
    logistic_auc: float | None = None
    logistic_accuracy: float | None = None
    logistic_path: str = ""
    saved_threshold: str = ""

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def to_rows(self) -> list[dict]:
        return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.to_dict().items()}]


__all__ += ["DetectedFace", "FaceDetections", "FaceEncodings", "FaceMatch", "FaceIdentity", "EnrolledIdentity",
            "FaceCalibration"]


# --- training and evaluation (visionkit finetune / evaluate) -------------------------------------------------


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
class EvaluationReport:
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
    def error(self) -> float:
        return 1.0 - self.accuracy

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
class TrainingRun:
    """A finished training run: its folder, saved model, epochs, and the evaluation report."""

    run_dir: str
    model_path: str
    report: EvaluationReport
    epochs: int = 0
    resumed_from: int | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"run_dir": self.run_dir, "model_path": self.model_path, "epochs": self.epochs,
                "resumed_from": self.resumed_from, "seconds": round(self.seconds, 1), "notes": list(self.notes),
                "report": self.report.to_dict()}

    def to_rows(self) -> list[dict]:
        return self.report.to_rows()


@dataclass(frozen=True)
class ExportResult:
    """An exported model and how far its predictions are from the Keras model's on the check images."""

    source: str
    path: str
    format: str
    max_difference: float
    checked: int
    same_top1: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def to_rows(self) -> list[dict]:
        return [self.to_dict()]


__all__ += ["Misclassified", "ClassMetrics", "EvaluationReport", "TrainingRun", "ExportResult"]


@dataclass(frozen=True, eq=False)
class Stylized:
    """A style-transfer result: the image (RGB uint8) and the losses after each step (``history[k]``: k steps)."""

    image: object  # np.ndarray (H, W, 3) uint8
    history: tuple = ()  # dicts: step, total, content, style, tv
    content: str = ""
    styles: tuple[str, ...] = ()
    backbone: str = ""
    steps: int = 0
    seconds: float = 0.0
    seconds_per_step: float = 0.0
    settings: dict = field(default_factory=dict)
    frames: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    style_images: tuple = ()  # the style images as used (resized), for contact sheets
    content_image: object = None  # the content image as used (resized)

    @property
    def losses(self) -> dict:
        """The final losses (total, content, style, tv)."""
        return {k: v for k, v in self.history[-1].items() if k != "step"} if self.history else {}

    def to_dict(self) -> dict:
        height, width = self.image.shape[:2]
        return {"content": self.content, "styles": list(self.styles), "backbone": self.backbone,
                "width": width, "height": height, "steps": self.steps, "seconds": round(self.seconds, 2),
                "seconds_per_step": round(self.seconds_per_step, 4), "losses": self.losses,
                "settings": self.settings, "frames": list(self.frames), "notes": list(self.notes),
                "history": list(self.history)}

    def to_rows(self) -> list[dict]:
        """One row per step of the loss history."""
        return [dict(row) for row in self.history]


__all__ += ["Stylized"]


# --- detection -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """One detected object: corners in pixels of the original image, score, class index and name."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: int
    label: str

    def to_dict(self) -> dict:
        return {"label": self.label, "class_id": self.class_id, "score": round(self.score, 6),
                "box": [round(v, 2) for v in (self.x1, self.y1, self.x2, self.y2)]}


@dataclass(frozen=True)
class Detections:
    """The boxes found in one image (or video ``frame``), best first; ``error`` set when it could not be read."""

    source: str
    boxes: tuple[Box, ...] = ()
    width: int = 0
    height: int = 0
    model: str = ""
    error: str | None = None
    frame: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __len__(self) -> int:
        return len(self.boxes)

    def arrays(self):
        """(boxes (n, 4) xyxy, scores (n,), class_ids (n,)) as numpy arrays."""
        import numpy as np

        boxes = np.array([[b.x1, b.y1, b.x2, b.y2] for b in self.boxes], dtype=np.float64).reshape(-1, 4)
        return boxes, np.array([b.score for b in self.boxes]), np.array([b.class_id for b in self.boxes], dtype=int)

    def to_dict(self) -> dict:
        data = {"source": self.source, "model": self.model, "width": self.width, "height": self.height,
                "boxes": [b.to_dict() for b in self.boxes]}
        if self.frame is not None:
            data["frame"] = self.frame
        if self.error is not None:
            data["error"] = self.error
        return data

    def to_rows(self) -> list[dict]:
        """One row per box (an image with none gets one row with empty box fields)."""
        base = {"source": self.source} if self.frame is None else {"source": self.source, "frame": self.frame}
        if not self.boxes:
            return [{**base, "label": "", "class_id": "", "score": "", "x1": "", "y1": "", "x2": "", "y2": "",
                     "error": self.error or ""}]
        return [{**base, "label": b.label, "class_id": b.class_id, "score": round(b.score, 6), "x1": round(b.x1, 2),
                 "y1": round(b.y1, 2), "x2": round(b.x2, 2), "y2": round(b.y2, 2), "error": ""} for b in self.boxes]


@dataclass(frozen=True)
class DetectionEvaluation:
    """AP per class at IoU 0.5 and 0.5:0.95 (``None`` for classes without ground truth), and their means."""

    model: str
    data: str
    images: int
    class_names: tuple[str, ...]
    positives: tuple[int, ...]
    ap50: tuple[float | None, ...]
    ap50_95: tuple[float | None, ...]
    map50: float
    map50_95: float
    conf: float
    iou: float
    pr_curve: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"model": self.model, "data": self.data, "images": self.images, "map50": round(self.map50, 4),
                "map50_95": round(self.map50_95, 4), "conf": self.conf, "iou": self.iou, "pr_curve": self.pr_curve,
                "classes": {name: {"boxes": n, "ap50": a, "ap50_95": b} for name, n, a, b in
                            zip(self.class_names, self.positives, self.ap50, self.ap50_95)},
                "notes": list(self.notes)}

    def to_rows(self) -> list[dict]:
        rows = [{"class": name, "boxes": n, "ap50": "" if a is None else round(a, 4),
                 "ap50_95": "" if b is None else round(b, 4)}
                for name, n, a, b in zip(self.class_names, self.positives, self.ap50, self.ap50_95) if n]
        return rows + [{"class": "all (mAP)", "boxes": sum(self.positives), "ap50": round(self.map50, 4),
                        "ap50_95": round(self.map50_95, 4)}]


@dataclass(frozen=True)
class DetectionTrainingRun:
    """A finished detector training run: folder, saved model, anchors, epochs and the held-out evaluation."""

    run_dir: str
    model_path: str
    anchors: tuple[tuple[float, float], ...]
    anchor_iou: float
    epochs: int
    seconds: float
    evaluation: DetectionEvaluation | None = None
    resumed_from: int | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"run_dir": self.run_dir, "model_path": self.model_path, "anchors": [list(a) for a in self.anchors],
                "anchor_iou": round(self.anchor_iou, 4), "epochs": self.epochs, "seconds": round(self.seconds, 1),
                "resumed_from": self.resumed_from, "notes": list(self.notes),
                "evaluation": self.evaluation.to_dict() if self.evaluation else None}

    def to_rows(self) -> list[dict]:
        return self.evaluation.to_rows() if self.evaluation else []


__all__ += ["Box", "Detections", "DetectionEvaluation", "DetectionTrainingRun"]


@dataclass(frozen=True)
class ClassArea:
    """How much of an image one class covers."""

    index: int
    label: str
    pixels: int
    fraction: float


@dataclass(frozen=True)
class Masks:
    """A semantic segmentation of one image: the class-id mask (original size), class areas, files written."""

    source: str
    mask: object = field(default=None, repr=False, compare=False)  # np.ndarray (H, W) uint8 class ids
    class_names: tuple[str, ...] = ()
    areas: tuple[ClassArea, ...] = ()
    size: tuple[int, int] = (0, 0)  # (height, width)
    model: str = ""
    mask_path: str = ""
    overlay_path: str = ""
    json_path: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        data = {"source": self.source, "model": self.model, "height": self.size[0], "width": self.size[1],
                "classes": {a.label: {"index": a.index, "pixels": a.pixels, "fraction": round(a.fraction, 6)}
                            for a in self.areas},
                "files": {k: v for k, v in (("mask", self.mask_path), ("overlay", self.overlay_path),
                                            ("areas", self.json_path)) if v}}
        if self.error is not None:
            data["error"] = self.error
        return data

    def to_rows(self) -> list[dict]:
        """One row per class present (CSV and tables)."""
        if not self.ok:
            return [{"source": self.source, "label": "", "pixels": "", "fraction": "", "mask": "", "error": self.error}]
        return [{"source": self.source, "label": a.label, "pixels": a.pixels, "fraction": round(a.fraction, 6),
                 "mask": self.mask_path, "error": ""} for a in self.areas if a.pixels]


@dataclass(frozen=True)
class SegmentationReport:
    """Scores of a segmentation model on a data set: pooled over all pixels, and averaged over images."""

    model: str
    data: str
    images: int
    class_names: tuple[str, ...]
    pooled: dict  # visionkit.segmentation.metrics.summarize(): mean_iou, pixel_accuracy, classes, confusion_matrix
    per_image: dict  # visionkit.segmentation.metrics.mean_of_image_scores()
    subset: str = "all"

    @property
    def mean_iou(self) -> float | None:
        return self.pooled.get("mean_iou")

    def to_dict(self) -> dict:
        return {"model": self.model, "data": self.data, "subset": self.subset, "images": self.images,
                "class_names": list(self.class_names), "pooled": self.pooled, "per_image_mean": self.per_image}

    def to_rows(self) -> list[dict]:
        """One row per class (pooled IoU and Dice, per-image mean IoU), then the means."""
        rows = []
        for i, name in enumerate(self.class_names):
            scores = self.pooled["classes"][name]
            rows.append({"class": name, "iou": scores["iou"], "dice": scores["dice"],
                         "image_mean_iou": self.per_image["class_iou"][i], "pixels": scores["pixels"]})
        rows.append({"class": "(mean)", "iou": self.pooled["mean_iou"], "dice": self.pooled["mean_dice"],
                     "image_mean_iou": self.per_image["mean_iou"], "pixels": ""})
        rows.append({"class": "(pixel accuracy)", "iou": self.pooled["pixel_accuracy"], "dice": "",
                     "image_mean_iou": self.per_image["pixel_accuracy"], "pixels": ""})
        return rows


@dataclass(frozen=True)
class SegmentationRun:
    """A finished segmentation training run: folder, saved model, held-out report."""

    run_dir: str
    model_path: str
    report: SegmentationReport | None
    epochs: int = 0
    resumed_from: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"run_dir": self.run_dir, "model_path": self.model_path, "epochs": self.epochs,
                "resumed_from": self.resumed_from, "seconds": round(self.seconds, 1),
                "report": self.report.to_dict() if self.report else None}

    def to_rows(self) -> list[dict]:
        return self.report.to_rows() if self.report else []


__all__ += ["ClassArea", "Masks", "SegmentationReport", "SegmentationRun"]
