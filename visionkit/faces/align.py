"""Face detection and alignment: MTCNN faces + 5 landmarks, and a similarity transform onto a canonical template.

MTCNN: Zhang, Zhang, Li & Qiao, "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
Networks", IEEE SPL 2016 — the ``mtcnn`` pip package, whose weights ship inside it. Alignment maps the five
landmarks onto the template of ArcFace's aligned crops (Deng et al. 2019) with a similarity transform (rotation,
uniform scale, translation; OpenCV ``estimateAffinePartial2D``), cropped to the encoder's input size.

Small images (shorter side < ``UPSCALE_BELOW``) in which nothing is found are enlarged ×``UPSCALE_FACTOR`` (bicubic)
and searched again; on the 92×112 AT&T faces MTCNN found all 300 at their own size, so the fallback was not needed
there (``visionkit faces train`` reports how many faces needed it).
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from visionkit.core.errors import InputError, ModelError, UsageError
from visionkit.faces.config import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_FACE
from visionkit.faces.results import DetectedFace

UPSCALE_BELOW = 160
UPSCALE_FACTOR = 2.0
MAX_DETECT_SIDE = 1600  # larger images are shrunk for detection only; alignment uses full resolution

#: The 5-point template of ArcFace's 112×112 aligned crops (Deng et al. 2019, insightface): image-left eye,
#: image-right eye, nose tip, image-left and image-right mouth corners. Scaled to the encoder's input size.
TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)


@functools.lru_cache(maxsize=1)
def _mtcnn():
    try:
        from mtcnn import MTCNN
    except ImportError:
        raise ModelError("face detection needs the `mtcnn` package: pip install mtcnn") from None
    return MTCNN(device="CPU:0")


def _run_mtcnn(image: np.ndarray, min_face: float) -> list[DetectedFace]:
    """MTCNN on an RGB uint8 image; boxes/landmarks in that image's pixels."""
    if min(image.shape[:2]) < 12:
        return []
    rows = _mtcnn().detect_faces(image, min_face_size=max(12, int(min_face)), output_type="numpy", box_format="xyxy")
    faces = []
    for row in np.asarray(rows, dtype=np.float64).reshape(-1, 16):
        points = tuple((float(x), float(y)) for x, y in zip(row[6:11], row[11:16]))
        faces.append(DetectedFace(tuple(float(v) for v in row[1:5]), float(row[5]), points))
    return faces


def _scaled(face: DetectedFace, factor: float) -> DetectedFace:
    return DetectedFace(tuple(v * factor for v in face.box), face.score,
                        tuple((x * factor, y * factor) for x, y in face.landmarks))


def detect_faces(image: np.ndarray, min_face: int = DEFAULT_MIN_FACE, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                 upscale: bool = True) -> tuple[tuple[DetectedFace, ...], bool]:
    """Faces in an RGB uint8 image, largest first, and whether the image had to be enlarged to find them.

    Faces narrower or shorter than ``min_face`` pixels, or less confident than ``min_confidence``, are dropped.
    """
    if min_face < 12:
        raise UsageError(f"min_face must be at least 12 pixels (MTCNN's smallest window), received {min_face}")
    if not 0.0 <= min_confidence <= 1.0:
        raise UsageError(f"min_confidence must lie in [0, 1], received {min_confidence}")
    import cv2

    height, width = image.shape[:2]
    shrink = min(1.0, MAX_DETECT_SIDE / max(height, width))
    work = image if shrink == 1.0 else cv2.resize(image, (round(width * shrink), round(height * shrink)),
                                                  interpolation=cv2.INTER_AREA)
    faces = [_scaled(f, 1 / shrink) for f in _run_mtcnn(work, min_face * shrink)]
    upscaled = False
    keep = lambda found: [f for f in found if f.score >= min_confidence and min(f.width, f.height) >= min_face]  # noqa: E731
    if not keep(faces) and upscale and min(height, width) < UPSCALE_BELOW:
        big = cv2.resize(image, None, fx=UPSCALE_FACTOR, fy=UPSCALE_FACTOR, interpolation=cv2.INTER_CUBIC)
        faces = [_scaled(f, 1 / UPSCALE_FACTOR) for f in _run_mtcnn(big, min_face * UPSCALE_FACTOR)]
        upscaled = bool(keep(faces))
    return tuple(sorted(keep(faces), key=lambda f: -f.area)), upscaled


def canonical_template(size: Sequence[int]) -> np.ndarray:
    """TEMPLATE_112 scaled to a (height, width) crop (uniform scale on the shorter side, centred)."""
    height, width = int(size[0]), int(size[1])
    scale = min(height, width) / 112.0
    offset = np.array([(width - 112.0 * scale) / 2, (height - 112.0 * scale) / 2], dtype=np.float32)
    return TEMPLATE_112 * scale + offset


def similarity_transform(landmarks: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """The 2×3 similarity (rotation + uniform scale + shift) taking the 5 landmarks onto the template.

    Least squares over all five points: OpenCV's ``estimateAffinePartial2D`` with a RANSAC tolerance so wide
    that every point is an inlier, then its Levenberg-Marquardt refinement.
    """
    import cv2

    source = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(source, canonical_template(size), method=cv2.RANSAC,
                                            ransacReprojThreshold=1e4, refineIters=20)
    if matrix is None:
        raise InputError("cannot align a face whose landmarks are degenerate (all on one point)")
    return matrix


def align_face(image: np.ndarray, face: DetectedFace, size: Sequence[int]) -> np.ndarray:
    """The face warped onto the canonical template: an RGB uint8 crop of ``size`` (height, width)."""
    import cv2

    matrix = similarity_transform(np.asarray(face.landmarks), size)
    return cv2.warpAffine(image, matrix, (int(size[1]), int(size[0])), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


__all__ = ["detect_faces", "align_face", "canonical_template", "similarity_transform", "TEMPLATE_112"]
