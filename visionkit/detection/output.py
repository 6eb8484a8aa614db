"""Detection outputs beyond the shared writers: COCO JSON, YOLO txt folders, and annotated images."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from visionkit.core.errors import UsageError
from visionkit.detection.results import Detections
from visionkit.core.writers import emit, write_text_atomic


def annotate(image: np.ndarray, result: Detections) -> np.ndarray:
    """A copy of RGB ``image`` with the result's boxes, class names and scores drawn (OpenCV)."""
    boxes, scores, class_ids = result.arrays()
    return draw_boxes(image, boxes, [b.label for b in result.boxes], scores.tolist(), class_ids.tolist())


#: OpenCV's font for box captions, and the smallest scale it is drawn at (letters about 7 px high, still legible).
LABEL_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
MIN_LABEL_SCALE = 0.35
#: Pixels of background left and right of a caption's text.
LABEL_PAD = 1


def draw_boxes(image: np.ndarray, boxes: np.ndarray, labels: Sequence[str], scores: Sequence[float] | None = None,
               class_ids: Sequence[int] | None = None) -> np.ndarray:
    """A copy of RGB ``image`` with ``xyxy`` pixel boxes and "label score" captions (OpenCV drawing), the captions
    placed by :func:`label_layout` and drawn after every box, the best box's last (on top)."""
    import cv2

    from visionkit.core.viz import palette

    canvas = np.ascontiguousarray(image.copy())
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    colours = palette(max(2, (max(class_ids) + 2) if class_ids is not None and len(class_ids) else 2))
    colour_of = [tuple(int(c) for c in colours[(class_ids[i] + 1) if class_ids is not None else 1])
                 for i in range(len(boxes))]
    thickness = max(1, round(min(canvas.shape[:2]) / 300))
    for box, colour in zip(boxes, colour_of):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
    captions = [labels[i] + (f" {scores[i]:.2f}" if scores is not None else "") for i in range(len(boxes))]
    order = list(np.argsort(-np.asarray(scores), kind="stable")) if scores is not None else list(range(len(boxes)))
    layout = label_layout(boxes, captions, canvas.shape[:2], 0.4 + 0.1 * thickness, order)
    for i in reversed(order):
        x, y, width, height, scale = layout[i]
        (_, text_height), _ = cv2.getTextSize(captions[i], LABEL_FONT, scale, 1)
        cv2.rectangle(canvas, (x, y), (x + width - 1, y + height - 1), colour_of[i], -1)
        cv2.putText(canvas, captions[i], (x + LABEL_PAD, y + text_height), LABEL_FONT, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return canvas


def label_layout(boxes: np.ndarray, captions: Sequence[str], image_size: tuple[int, int], base_scale: float,
                 order: Sequence[int] | None = None) -> list[tuple[int, int, int, int, float]]:
    """Where each box's caption goes: ``(x, y, width, height, font scale)`` of its filled background, per box.

    Hand-written: OpenCV draws text but places none. The font is ``base_scale``, smaller for a box narrower than its
    caption (down to :data:`MIN_LABEL_SCALE`); the background is as wide as the text (+ :data:`LABEL_PAD`). Boxes
    are taken in ``order`` (best first): each caption goes to the first of above the box, inside it at its top,
    below it, inside it at its bottom (each from the box's left edge, then ending at its right edge) that lies on the
    image and covers no caption placed before; where all do, to the one covering least (greedy, so the best boxes
    get the clear places).
    """
    import cv2

    height_px, width_px = image_size
    placed: dict[int, tuple[int, int, int, int, float]] = {}
    for i in (range(len(boxes)) if order is None else order):
        x1, y1, x2, y2 = (int(round(v)) for v in boxes[i])
        (full_width, _), _ = cv2.getTextSize(captions[i], LABEL_FONT, base_scale, 1)
        fit = base_scale * max(x2 - x1, 1) / max(full_width + 2 * LABEL_PAD, 1)
        scale = round(float(np.clip(fit, min(MIN_LABEL_SCALE, base_scale), base_scale)), 3)
        (text_width, text_height), baseline = cv2.getTextSize(captions[i], LABEL_FONT, scale, 1)
        width, height = min(text_width + 2 * LABEL_PAD, width_px), min(text_height + baseline, height_px)
        lefts = [int(np.clip(x, 0, width_px - width)) for x in (x1, x2 - width)]  # from the left edge, the right
        tops = [y1 - height, y1, y2, y2 - height]  # above, inside at the top, below, inside at the bottom
        candidates = [(left, top, width, height, scale) for top in tops for left in lefts
                      if 0 <= top <= height_px - height]
        candidates = candidates or [(lefts[0], int(np.clip(y1, 0, height_px - height)), width, height, scale)]
        placed[i] = min(candidates, key=lambda c: sum(_covered(c, other) for other in placed.values()))
    return [placed[i] for i in range(len(boxes))]


def _covered(a: tuple, b: tuple) -> int:
    """Pixels two ``(x, y, width, height, …)`` rectangles share."""
    across = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    down = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(across, 0) * max(down, 0)


def unique_path(folder: Path, name: str, taken: set) -> Path:
    """``folder/name``, or ``folder/stem_2.ext`` … when an earlier input of this run had the same name."""
    path = folder / name
    number = 2
    while str(path) in taken:
        path = folder / f"{Path(name).stem}_{number}{Path(name).suffix}"
        number += 1
    taken.add(str(path))
    return path


def to_coco(results: Sequence[Detections], class_names: Sequence[str]) -> dict:
    """A COCO results JSON: ``images``, ``annotations`` (bbox = x, y, width, height in pixels, with ``score``),
    ``categories``: COCO's own ids for a detector of COCO's 80 classes, else class index + 1
    (:func:`~visionkit.detection.coco.coco_categories`)."""
    from visionkit.detection.coco import coco_categories

    categories = coco_categories(class_names)
    images, annotations = [], []
    for image_id, result in enumerate((r for r in results if r.ok), start=1):
        entry = {"id": image_id, "file_name": result.source, "width": result.width, "height": result.height}
        if result.frame is not None:
            entry["frame"] = result.frame
        images.append(entry)
        for box in result.boxes:
            if not 0 <= box.class_id < len(categories):
                raise UsageError(f"{result.source}: a box of class {box.class_id}, but {len(categories)} class names "
                                 f"were given (pass the detector's class_names)")
            w, h = box.x2 - box.x1, box.y2 - box.y1
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": categories[box.class_id]["id"],
                                "bbox": [round(box.x1, 2), round(box.y1, 2), round(w, 2), round(h, 2)],
                                "area": round(w * h, 2), "score": round(box.score, 6), "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": categories}


def yolo_lines(result: Detections) -> str:
    """``class cx cy w h score`` per box, coordinates as fractions of the image size (YOLO txt + a score column)."""
    lines = []
    for b in result.boxes:
        cx, cy = (b.x1 + b.x2) / 2 / result.width, (b.y1 + b.y2) / 2 / result.height
        w, h = (b.x2 - b.x1) / result.width, (b.y2 - b.y1) / result.height
        lines.append(f"{b.class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f} {b.score:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


def write_results(results: Sequence[Detections], fmt: str, output: str | os.PathLike | None = None,
                  class_names: Sequence[str] | None = None) -> None:
    """Render ``results`` as table/json/jsonl/csv (shared writers), coco (one JSON) or yolo (a folder of .txt).

    ``class_names`` (the detector's) name the COCO categories and choose their ids (:func:`to_coco`); without them,
    the classes found in ``results``, numbered class index + 1.
    """
    if class_names is None:
        found = {b.class_id: b.label for r in results for b in r.boxes}
        class_names = [found.get(i, str(i)) for i in range(max(found, default=-1) + 1)]
    if fmt == "coco":
        text = json.dumps(to_coco(results, class_names), indent=1) + "\n"
        if output:
            write_text_atomic(output, text)
        else:
            print(text, end="")
        return
    if fmt == "yolo":
        if not output:
            raise UsageError("--format yolo writes one .txt per image: give a folder with --output DIR")
        folder, taken = Path(output), set()
        for result in results:
            if result.ok:
                stem = Path(result.source).stem + (f"_{result.frame:06d}" if result.frame is not None else "")
                write_text_atomic(unique_path(folder, stem + ".txt", taken), yolo_lines(result))
        return
    good = [r for r in results if r.ok]
    columns = ["source", "label", "score", "x1", "y1", "x2", "y2"] if fmt == "table" else None
    emit(good if fmt == "table" else list(results), fmt, output, columns=columns)
