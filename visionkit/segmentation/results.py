"""Result types of segmentation: class-id masks with class areas, IoU reports, a finished training run."""

from __future__ import annotations

from dataclasses import dataclass, field

from visionkit.core.results import Result, Run


@dataclass(frozen=True)
class ClassArea:
    """How much of an image one class covers."""

    index: int
    label: str
    pixels: int
    fraction: float


@dataclass(frozen=True)
class Masks(Result):
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
class SegmentationReport(Result):
    """Scores of a segmentation model on a data set: pooled over all pixels, and averaged over images."""

    model: str
    data: str
    images: int
    class_names: tuple[str, ...]
    pooled: dict  # visionkit.segmentation.metrics.summarize(): mean_iou, pixel_accuracy, classes, confusion_matrix
    per_image: dict  # visionkit.segmentation.metrics.mean_of_image_scores()
    subset: str = "all"

    @property
    def source(self) -> str:
        return self.data

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
class SegmentationRun(Run):
    """A finished ``visionkit segment train`` run; ``report`` is the :class:`SegmentationReport` on its held-out images."""
