"""Face detection and alignment: MTCNN faces + 5 landmarks, and a similarity transform onto an encoder's template.

MTCNN: Zhang, Zhang, Li & Qiao, "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
Networks", IEEE SPL 2016 — the ``mtcnn`` pip package, whose weights ship inside it. Alignment maps the five
landmarks onto a template with a similarity transform (rotation, uniform scale, translation; OpenCV
``estimateAffinePartial2D``), cropped to the encoder's input size. Which template, and how pixels outside the image
are filled, belong to the encoder (:class:`Alignment`, read from its registry entry or sidecar): ArcFace's aligned
crops (Deng et al. 2019) for the encoders trained here, dlib's 150-px chip for dlib's encoder.

Small images (shorter side < ``UPSCALE_BELOW``) in which nothing is found are enlarged ×``UPSCALE_FACTOR`` (bicubic)
and searched again; on the 92×112 AT&T faces MTCNN found all 300 at their own size, so the fallback was not needed
there (``visionkit faces train`` reports how many faces needed it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from visionkit.core.errors import InputError, ModelError, UsageError
from visionkit.faces.config import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_FACE
from visionkit.faces.results import DetectedFace

UPSCALE_BELOW = 160
UPSCALE_FACTOR = 2.0
MAX_DETECT_SIDE = 1600  # larger images are shrunk for detection only; alignment uses full resolution
#: MTCNN searches for faces from this size at most and smaller faces are dropped afterwards: the ``mtcnn`` package
#: (1.0) builds as many pyramid levels whatever ``min_face_size`` is, so a larger one shrinks the last levels below
#: P-Net's 12-px window and nothing at all is returned (measured: examples/astronaut.jpg's 84-px face is found at
#: min_face_size 12–24 and missed from 28 up; coco128 at 40 gave no face in any photo).
MTCNN_SEARCH_FROM = 20

#: The 5-point template of ArcFace's 112×112 aligned crops (Deng et al. 2019, insightface): image-left eye,
#: image-right eye, nose tip, image-left and image-right mouth corners. Scaled to the encoder's input size.
TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)
#: MTCNN's five landmarks (same order) in the 150×150 chip of dlib's ``get_face_chip_details(shape, 150, 0.25)``,
#: in chip pixels (x, y): the mean over 113 faces (AT&T s1–s10, examples/astronaut.jpg, 12 coco128 faces) of MTCNN's
#: points mapped through dlib's chip transform, with dlib's 5-point predictor run on MTCNN's box. Made by
#: ``python benchmarks/fit_dlib_chip_template.py``, which also validates it on 111 other faces (AT&T s11–s20, 11 coco128
#: faces): chips aligned with it are encoded at a median raw distance of 0.14 from dlib's own chips (AT&T; 0.08
#: between dlib's chips from its HOG and MTCNN boxes).
CHIP_TEMPLATE_150 = np.array([[46.13, 45.55], [101.50, 45.17], [73.74, 75.26], [49.70, 100.91], [98.15, 101.07]],
                             dtype=np.float32)
#: template name -> (five points, the side of the square crop they are given in).
TEMPLATES = {"arcface": (TEMPLATE_112, 112.0), "dlib_chip": (CHIP_TEMPLATE_150, 150.0)}
#: how pixels outside the image are filled: OpenCV's replicated edge, or black (what dlib's chips do).
BORDERS = ("replicate", "black")


@dataclass(frozen=True)
class Alignment:
    """How an encoder wants its faces cut: the landmark ``template`` (a key of :data:`TEMPLATES`, scaled to the
    crop) and the ``border`` fill outside the image (one of :data:`BORDERS`)."""

    template: str = "arcface"
    border: str = "replicate"

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise UsageError(f"unknown alignment template {self.template!r}; choose one of {', '.join(TEMPLATES)}")
        if self.border not in BORDERS:
            raise UsageError(f"unknown alignment border {self.border!r}; choose one of {', '.join(BORDERS)}")


ARCFACE = Alignment()


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
    search_from = max(12, min(int(min_face), MTCNN_SEARCH_FROM))
    rows = _mtcnn().detect_faces(image, min_face_size=search_from, output_type="numpy", box_format="xyxy")
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


def canonical_template(size: Sequence[int], template: str = "arcface") -> np.ndarray:
    """A template of :data:`TEMPLATES` scaled to a (height, width) crop (uniform scale on the shorter side, centred)."""
    points, side = TEMPLATES[Alignment(template).template]
    height, width = int(size[0]), int(size[1])
    scale = min(height, width) / side
    offset = np.array([(width - side * scale) / 2, (height - side * scale) / 2], dtype=np.float32)
    return points * scale + offset


def similarity_transform(landmarks: np.ndarray, size: Sequence[int], template: str = "arcface") -> np.ndarray:
    """The 2×3 similarity (rotation + uniform scale + shift) taking the 5 landmarks onto the template.

    Least squares over all five points: OpenCV's ``estimateAffinePartial2D`` with a RANSAC tolerance so wide
    that every point is an inlier, then its Levenberg-Marquardt refinement.
    """
    import cv2

    source = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(source, canonical_template(size, template), method=cv2.RANSAC,
                                            ransacReprojThreshold=1e4, refineIters=20)
    if matrix is None:
        raise InputError("cannot align a face whose landmarks are degenerate (all on one point)")
    return matrix


def align_face(image: np.ndarray, face: DetectedFace, size: Sequence[int], alignment: Alignment = ARCFACE) -> np.ndarray:
    """The face warped onto the alignment's template: an RGB uint8 crop of ``size`` (height, width)."""
    import cv2

    matrix = similarity_transform(np.asarray(face.landmarks), size, alignment.template)
    border = cv2.BORDER_REPLICATE if alignment.border == "replicate" else cv2.BORDER_CONSTANT
    return cv2.warpAffine(image, matrix, (int(size[1]), int(size[0])), flags=cv2.INTER_LINEAR, borderMode=border,
                          borderValue=0)


__all__ = ["detect_faces", "align_face", "canonical_template", "similarity_transform", "Alignment", "ARCFACE",
           "TEMPLATES", "BORDERS", "TEMPLATE_112", "CHIP_TEMPLATE_150"]
