"""Plots (training curves, confusion matrix, ROC, precision-recall) as PNG files, contact sheets of images, and the
colour palette that drawings on images share (boxes: :mod:`visionkit.detection.output`, masks: :mod:`visionkit.segmentation.predict`).

Plots use matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from visionkit.core.writers import atomic_path


def _figure(width: float = 6.0, height: float = 4.5):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=(width, height), dpi=100)


def _save(plt, figure, path: str | os.PathLike) -> None:
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def plot_curves(history: Mapping[str, Sequence[float]], path: str | os.PathLike, title: str = "training") -> None:
    """One panel per metric (``loss``, ``accuracy`` …), training and ``val_`` series together."""
    metrics = [k for k in history if not k.startswith("val_") and k not in ("epoch", "lr", "learning_rate")]
    plt, figure = _figure(5.0 * max(1, len(metrics)), 4.0)
    for i, metric in enumerate(metrics, start=1):
        axes = figure.add_subplot(1, len(metrics), i)
        values = list(history[metric])
        epochs = np.arange(1, len(values) + 1)
        axes.plot(epochs, values, marker="o", label=f"train {metric}")
        if f"val_{metric}" in history:
            axes.plot(epochs, list(history[f"val_{metric}"]), marker="o", label=f"dev {metric}")
        axes.set_xlabel("epoch")
        axes.set_title(f"{title}: {metric}")
        axes.grid(alpha=0.3)
        axes.legend()
    _save(plt, figure, path)


def plot_confusion(matrix: np.ndarray, names: Sequence[str], path: str | os.PathLike, normalize: bool = True) -> None:
    """Confusion matrix (rows: true class, columns: predicted), counts written in the cells."""
    matrix = np.asarray(matrix, dtype=np.float64)
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    size = min(14.0, 2.5 + 0.5 * len(names))
    plt, figure = _figure(size, size)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(shown, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes, fraction=0.046)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, labels=names, rotation=45, ha="right")
    axes.set_yticks(ticks, labels=names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if len(names) <= 30:
        for (row, col), count in np.ndenumerate(matrix):
            colour = "white" if shown[row, col] > 0.5 * max(shown.max(), 1e-12) else "black"
            axes.text(col, row, f"{int(count)}", ha="center", va="center", color=colour, fontsize=8)
    _save(plt, figure, path)


def plot_roc(fpr: Sequence[float], tpr: Sequence[float], path: str | os.PathLike, auc: float | None = None,
             marks: Mapping[str, tuple[float, float]] | None = None) -> None:
    """ROC curve with optional labelled operating points ``{"EER": (fpr, tpr)}``."""
    plt, figure = _figure(5.0, 5.0)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(fpr, tpr, label=f"ROC (AUC = {auc:.4f})" if auc is not None else "ROC")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    for name, (x, y) in (marks or {}).items():
        axes.scatter([x], [y], zorder=3)
        axes.annotate(name, (x, y), textcoords="offset points", xytext=(6, -10))
    axes.set_xlabel("false accept rate")
    axes.set_ylabel("true accept rate")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    _save(plt, figure, path)


def plot_pr(curves: Mapping[str, tuple[Sequence[float], Sequence[float], float]], path: str | os.PathLike) -> None:
    """Precision-recall curves: ``{name: (recall, precision, ap)}``."""
    plt, figure = _figure(6.0, 5.0)
    axes = figure.add_subplot(1, 1, 1)
    for name, (recall, precision, ap) in curves.items():
        axes.plot(recall, precision, label=f"{name} (AP {ap:.3f})")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    _save(plt, figure, path)


def palette(count: int) -> np.ndarray:
    """``count`` distinct RGB colours (golden-ratio hues), index 0 black for background."""
    import colorsys

    colours = [(0, 0, 0)] + [
        tuple(int(255 * c) for c in colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.75, 0.95))
        for i in range(1, count)
    ]
    return np.array(colours[:count], dtype=np.uint8)


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], captions: Sequence[Sequence[str]] | None = None,
                  row_labels: Sequence[str] | None = None, tile: int = 96, gap: int = 4,
                  title: str | None = None, keep_height: bool = False, font_scale: float = 0.35) -> np.ndarray:
    """A grid of RGB images (one list per row, each fitted into a ``tile`` x ``tile`` cell, aspect ratio kept), with
    an optional caption under each cell, a label left of each row and a title on top; white background, RGB uint8.

    ``keep_height``: every image ``tile`` pixels high and as wide as its aspect ratio makes it (panels side by side,
    as ``stylize --grid`` draws them) instead of fitted into a square. ``font_scale``: the captions' size (OpenCV's
    Hershey scale; the strip under the cells grows with it). Drawn with OpenCV."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    caption_h = round(40 * font_scale) if captions else 0
    label_w = (8 + max(cv2.getTextSize(label, font, 0.4, 1)[0][0] for label in row_labels)) if row_labels else 0
    fitted = [[_fit(image, tile, keep_height) for image in row] for row in rows]
    cell_widths = [[image.shape[1] if keep_height else tile for image in row] for row in fitted]
    title_h = 22 if title else 0
    height = title_h + gap + len(rows) * (tile + caption_h + gap)
    width = max(label_w + gap + (max((sum(w + gap for w in row) for row in cell_widths), default=0) or tile + gap),
                (cv2.getTextSize(title, font, 0.5, 1)[0][0] + 2 * gap) if title else 0)
    sheet = np.full((height, width, 3), 255, np.uint8)
    if title:
        cv2.putText(sheet, title, (gap, 16), font, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    for r, row in enumerate(fitted):
        top = title_h + gap + r * (tile + caption_h + gap)
        if row_labels:
            cv2.putText(sheet, row_labels[r], (4, top + tile // 2 + 4), font, 0.4, (20, 20, 20), 1, cv2.LINE_AA)
        left = label_w + gap
        for c, (image, cell) in enumerate(zip(row, cell_widths[r])):
            h, w = image.shape[:2]
            y, x = top + (tile - h) // 2, left + (cell - w) // 2
            sheet[y:y + h, x:x + w] = image
            if captions and captions[r][c]:
                cv2.putText(sheet, captions[r][c][:cell // 6], (left, top + tile + round(31 * font_scale)), font,
                            font_scale, (40, 40, 40), 1, cv2.LINE_AA)
            left += cell + gap
    return sheet


def _fit(image: np.ndarray, tile: int, keep_height: bool) -> np.ndarray:
    """An image as RGB uint8, scaled to ``tile`` pixels high (``keep_height``) or to fit a ``tile`` square."""
    import cv2

    rgb = np.asarray(image, dtype=np.uint8)
    rgb = np.repeat(rgb[..., None], 3, axis=2) if rgb.ndim == 2 else rgb[..., :3]
    factor = tile / (rgb.shape[0] if keep_height else max(rgb.shape[:2]))
    h, w = max(1, round(rgb.shape[0] * factor)), max(1, round(rgb.shape[1] * factor))
    return cv2.resize(np.ascontiguousarray(rgb), (w, h), interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_NEAREST)
