"""Result types of classification: ranked labels for one image."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from visionkit.core.results import Result


@dataclass(frozen=True)
class Prediction:
    """One ranked label: class index, name and probability."""

    index: int
    label: str
    score: float


@dataclass(frozen=True)
class Classification(Result):
    """Top-k labels for one image (``error`` set, ``top`` empty, when it could not be read)."""

    source: str
    top: tuple[Prediction, ...] = ()
    model: str = ""
    error: str | None = None

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
