"""Result types of detection: boxes per image (or video frame), AP evaluation, a finished training run."""

from __future__ import annotations

from dataclasses import dataclass

from visionkit.core.results import Result, Run


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
class Detections(Result):
    """The boxes found in one image (or video ``frame``), best first; ``error`` set when it could not be read."""

    source: str
    boxes: tuple[Box, ...] = ()
    width: int = 0
    height: int = 0
    model: str = ""
    error: str | None = None
    frame: int | None = None

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
class DetectionEvaluation(Result):
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

    @property
    def source(self) -> str:
        return self.data

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
class DetectionTrainingRun(Run):
    """A finished ``visionkit detect train`` run; ``report`` (also ``evaluation``) is the held-out
    :class:`DetectionEvaluation`, ``anchors`` the k-means anchors (w, h as fractions of the input)."""

    anchors: tuple[tuple[float, float], ...] = ()
    anchor_iou: float = 0.0

    @property
    def evaluation(self) -> DetectionEvaluation | None:
        return self.report

    def to_dict(self) -> dict:
        return {"run_dir": self.run_dir, "model_path": self.model_path, "anchors": [list(a) for a in self.anchors],
                "anchor_iou": round(self.anchor_iou, 4), "epochs": self.epochs, "seconds": round(self.seconds, 1),
                "resumed_from": self.resumed_from, "notes": list(self.notes),
                "evaluation": self.report.to_dict() if self.report else None}


@dataclass(frozen=True)
class AnchorBoxes(Result):
    """k-means anchors (1 - IoU distance) of a data set's boxes: (w, h) as fractions of the letterboxed input, and
    the mean IoU of each box to its best anchor."""

    data: str
    anchors: tuple[tuple[float, float], ...]
    k: int
    mean_iou: float
    boxes: int

    @property
    def source(self) -> str:
        return self.data

    def to_dict(self) -> dict:
        return {"anchors": [list(a) for a in self.anchors], "k": self.k, "mean_iou": self.mean_iou,
                "boxes": self.boxes, "data": self.data}

    def to_rows(self) -> list[dict]:
        return [{"anchor": i, "width": w, "height": h} for i, (w, h) in enumerate(self.anchors)]

    def __getitem__(self, key: str):
        """``anchors["mean_iou"]``: detection_anchors returned a dict before 0.2; kept for one release."""
        import warnings

        warnings.warn("detection_anchors() returns an AnchorBoxes result: use its attributes or to_dict()",
                      DeprecationWarning, stacklevel=2)
        return self.to_dict()[key]
