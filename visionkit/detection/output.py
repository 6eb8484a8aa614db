"""Detection outputs beyond the shared writers: COCO JSON, YOLO txt folders, and annotated images."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from visionkit.core.errors import UsageError
from visionkit.core.results import Detections
from visionkit.core.writers import emit, write_text_atomic


def annotate(image: np.ndarray, result: Detections) -> np.ndarray:
    """A copy of RGB ``image`` with the result's boxes, class names and scores drawn (OpenCV)."""
    from visionkit.core.viz import draw_boxes

    boxes, scores, class_ids = result.arrays()
    return draw_boxes(image, boxes, [b.label for b in result.boxes], scores.tolist(), class_ids.tolist())


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
    """A COCO-style JSON: ``images``, ``annotations`` (bbox = x, y, width, height in pixels, with ``score``),
    ``categories`` (id = class index)."""
    images, annotations = [], []
    for image_id, result in enumerate((r for r in results if r.ok), start=1):
        entry = {"id": image_id, "file_name": result.source, "width": result.width, "height": result.height}
        if result.frame is not None:
            entry["frame"] = result.frame
        images.append(entry)
        for box in result.boxes:
            w, h = box.x2 - box.x1, box.y2 - box.y1
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": box.class_id,
                                "bbox": [round(box.x1, 2), round(box.y1, 2), round(w, 2), round(h, 2)],
                                "area": round(w * h, 2), "score": round(box.score, 6), "iscrowd": 0})
    categories = [{"id": i, "name": name} for i, name in enumerate(class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def yolo_lines(result: Detections) -> str:
    """``class cx cy w h score`` per box, coordinates as fractions of the image size (YOLO txt + a score column)."""
    lines = []
    for b in result.boxes:
        cx, cy = (b.x1 + b.x2) / 2 / result.width, (b.y1 + b.y2) / 2 / result.height
        w, h = (b.x2 - b.x1) / result.width, (b.y2 - b.y1) / result.height
        lines.append(f"{b.class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f} {b.score:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


def write_results(results: Sequence[Detections], fmt: str, output: str | os.PathLike | None,
                  class_names: Sequence[str]) -> None:
    """Render ``results`` as table/json/jsonl/csv (shared writers), coco (one JSON) or yolo (a folder of .txt)."""
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
