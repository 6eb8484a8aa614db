"""Result types of explaining a classifier: a Grad-CAM heatmap per image, and the patches that most activate units."""

from __future__ import annotations

from dataclasses import dataclass, field

from visionkit.core.results import Result


@dataclass(frozen=True, eq=False)
class Explanation(Result):
    """Grad-CAM of one image for one class, and what it explains.

    ``cam`` is the map at the layer's resolution (h, w), ``size`` the image's (height, width); ``heatmap`` is the map
    upsampled to the image and scaled to [0, 1] (computed when read, so a large batch keeps only the small maps).
    ``label``/``score`` are the explained class and its probability; ``predicted``/``predicted_score`` the model's
    top class (the same unless a class was asked for). ``peak`` is the (x, y) pixel of the hottest point.
    """

    source: str
    model: str = ""
    layer: str = ""
    class_id: int | None = None
    label: str = ""
    score: float | None = None
    predicted: str = ""
    predicted_score: float | None = None
    cam: object = field(default=None, repr=False)  # np.ndarray (h, w) float, >= 0
    size: tuple[int, int] = (0, 0)
    peak: tuple[int, int] | None = None
    path: str = ""
    error: str | None = None

    @property
    def heatmap(self):
        """The map at the image's size, [0, 1], float32 (None when the image could not be read)."""
        if self.cam is None:
            return None
        from visionkit.explanation.gradcam import normalise, upsample

        return normalise(upsample(self.cam, *self.size))

    def to_dict(self) -> dict:
        data = {"source": self.source, "model": self.model, "layer": self.layer, "class_id": self.class_id,
                "label": self.label, "score": None if self.score is None else round(self.score, 6),
                "predicted": self.predicted,
                "predicted_score": None if self.predicted_score is None else round(self.predicted_score, 6),
                "height": self.size[0], "width": self.size[1], "peak": list(self.peak) if self.peak else None,
                "path": self.path}
        if self.error is not None:
            data["error"] = self.error
        return data

    def to_rows(self) -> list[dict]:
        data = self.to_dict()
        data["peak"] = "" if self.peak is None else f"{self.peak[0]},{self.peak[1]}"
        data.pop("height"), data.pop("width")
        data.setdefault("error", "")
        return [data]


@dataclass(frozen=True)
class Patch:
    """Where one unit fired most in one image: the patch (x1, y1, x2, y2 in the image's own pixels) and the value."""

    source: str
    activation: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class UnitPatches(Result):
    """The image patches that most activate chosen units of a layer (Zeiler & Fergus 2014, figure 2).

    ``units[k]`` is a unit (channel) index and ``patches[k]`` its best patches, strongest first, one per image.
    A patch is the square around the unit's position that holds ``erf_mass`` of its input gradient (its effective
    receptive field); ``median_side`` is the median side in model-input pixels.
    """

    data: str
    model: str
    layer: str
    channels: int
    units: tuple[int, ...]
    patches: tuple[tuple[Patch, ...], ...]
    images: int
    median_side: float = 0.0
    erf_mass: float = 0.0
    sheet: str = ""
    skipped: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return self.data

    def to_rows(self) -> list[dict]:
        return [{"unit": unit, "rank": rank, "activation": round(p.activation, 4), "source": p.source,
                 "box": " ".join(f"{v:.0f}" for v in p.box)}
                for unit, patches in zip(self.units, self.patches) for rank, p in enumerate(patches, start=1)]
