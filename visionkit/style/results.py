"""Result type of style transfer: the image and its loss history."""

from __future__ import annotations

from dataclasses import dataclass, field

from visionkit.core.results import Result


@dataclass(frozen=True, eq=False)
class Stylized(Result):
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
    files: dict = field(default_factory=dict)  # what was written: image, grid, history

    @property
    def source(self) -> str:
        return self.content

    @property
    def losses(self) -> dict:
        """The final losses (total, content, style, tv)."""
        return {k: v for k, v in self.history[-1].items() if k != "step"} if self.history else {}

    def to_dict(self) -> dict:
        height, width = self.image.shape[:2]
        return {"content": self.content, "styles": list(self.styles), "backbone": self.backbone,
                "width": width, "height": height, "steps": self.steps, "seconds": round(self.seconds, 2),
                "seconds_per_step": round(self.seconds_per_step, 4), "losses": self.losses,
                "settings": self.settings, "frames": list(self.frames), "notes": list(self.notes), "files": self.files,
                "history": list(self.history)}

    def to_rows(self) -> list[dict]:
        """One row per step of the loss history."""
        return [dict(row) for row in self.history]
