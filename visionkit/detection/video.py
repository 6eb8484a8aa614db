"""Detection on a video file: frames in (OpenCV), boxes per frame out, optionally an annotated video."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from visionkit.core.model import LoadedModel
from visionkit.detection.boxes import letterbox
from visionkit.detection.config import (DEFAULT_BATCH_SIZE, DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET, DEFAULT_MODEL,
                                        VIDEO_EXTENSIONS, check_thresholds)
from visionkit.detection.detector import load_detector, postprocess, raw_outputs, to_result
from visionkit.detection.results import Detections


def is_video(path) -> bool:
    return isinstance(path, (str, os.PathLike)) and Path(path).suffix.lower() in VIDEO_EXTENSIONS


def detect_video(
    path: str | os.PathLike,
    model: "str | os.PathLike | LoadedModel" = DEFAULT_MODEL,
    conf: float = DEFAULT_CONF,
    iou: float = DEFAULT_IOU,
    classes: Sequence[int | str] | None = None,
    max_det: int = DEFAULT_MAX_DET,
    agnostic: bool = False,
    save: str | os.PathLike | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Detections]:
    """One Detections per frame (``frame`` set). ``save``: a folder for ``<name>.mp4`` with the boxes drawn,
    written to a temporary file and renamed when complete."""
    import cv2

    from visionkit.detection.output import annotate

    check_thresholds(conf, iou, max_det)
    detector = load_detector(model)
    wanted = detector.class_ids(classes)
    path = Path(path)
    if not path.is_file():
        return [Detections(str(path), model=detector.name, error=f"{path}: no such file")]
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        return [Detections(str(path), model=detector.name, error=f"{path}: OpenCV cannot open this video")]
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer, target, tmp = None, None, None
    results: list[Detections] = []
    frames: list[tuple[int, np.ndarray, np.ndarray, object]] = []

    def flush() -> None:
        nonlocal writer
        raw = raw_outputs(detector, np.stack([canvas for _, _, canvas, _ in frames]).astype(np.float32))
        for (index, image, _, geometry), output in zip(frames, raw):
            arrays = postprocess(detector, output, geometry, conf, iou, max_det, wanted, agnostic)
            result = to_result(detector, str(path), geometry, arrays, frame=index)
            results.append(result)
            if tmp is not None:
                if writer is None:
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (image.shape[1], image.shape[0]))
                writer.write(cv2.cvtColor(annotate(image, result), cv2.COLOR_RGB2BGR))
        frames.clear()
        if on_progress:
            on_progress(len(results), max(total, len(results)))

    if save is not None:
        target = Path(save) / (path.stem + ".mp4")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.stem}.{os.getpid()}.part.mp4")
    try:
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            canvas, geometry = letterbox(image, detector.input_size)
            frames.append((index, image, canvas, geometry))
            index += 1
            if len(frames) == batch_size:
                flush()
        if frames:
            flush()
        if writer is not None:
            writer.release()
            os.replace(tmp, target)
    finally:
        capture.release()
        if tmp is not None and tmp.exists():
            tmp.unlink()
    if not results:
        return [Detections(str(path), model=detector.name, error=f"{path}: no frames could be read (not a video "
                                                                  f"OpenCV can decode?)")]
    if on_progress:
        on_progress(len(results), len(results))
    return results
