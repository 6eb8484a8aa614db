"""dlib-bin as the reference for the dlib benchmarks (a helper module, not a benchmark).

dlib's own alignment: its 5-point shape predictor run on a face box (here MTCNN's, so no HOG detector is needed on
small images), ``get_face_chip_details(shape, 150, 0.25)`` and the chip it cuts. :func:`chip_transform` is the
image → chip affine map of dlib's ``extract_image_chips`` (``dlib/image_transforms/interpolation.h``): the chip's
top-left, top-right and bottom-left pixels are the corners of ``details.rect`` rotated by ``details.angle`` about
its centre.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"
ATT = SHARED / "att_faces"
CHIP_SIZE, CHIP_PADDING = 150, 0.25


def models_dir() -> Path:
    """``face_recognition_models/models`` without importing the package (its ``__init__`` needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("needs the pip package face-recognition-models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def load_dlib():
    """``(dlib, shape predictor, recognizer)``; exits with the reason when dlib-bin is missing."""
    try:
        import dlib
    except ImportError:
        sys.exit("needs dlib-bin as the reference: pip install dlib-bin")
    models = models_dir()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    recognizer = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    return dlib, predictor, recognizer


def _rotate(point, centre, angle):
    cos, sin = np.cos(angle), np.sin(angle)
    x, y = point[0] - centre[0], point[1] - centre[1]
    return (cos * x - sin * y + centre[0], sin * x + cos * y + centre[1])


def chip_transform(details) -> np.ndarray:
    """The 2×3 affine matrix taking image pixels to the chip's pixels for a ``dlib.chip_details``."""
    import cv2

    rect = details.rect
    centre = ((rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2)
    corners = [(rect.left(), rect.top()), (rect.right(), rect.top()), (rect.left(), rect.bottom())]
    image_points = np.float32([_rotate(p, centre, details.angle) for p in corners])
    chip_points = np.float32([(0, 0), (details.cols - 1, 0), (0, details.rows - 1)])
    return cv2.getAffineTransform(image_points, chip_points)


def dlib_alignment(dlib, predictor, image: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
    """dlib's 150×150 chip of the face in ``box`` (x0, y0, x1, y1) and its image → chip matrix."""
    rect = dlib.rectangle(*(int(round(v)) for v in box))
    shape = predictor(image, rect)
    details = dlib.get_face_chip_details(shape, CHIP_SIZE, CHIP_PADDING)
    return dlib.get_face_chip(image, shape, CHIP_SIZE, CHIP_PADDING), chip_transform(details)


def att_paths(persons) -> list[tuple[str, Path]]:
    """(identity, path) of the AT&T images of ``persons`` (numbers), or exit when the data set is absent."""
    if not ATT.is_dir():
        sys.exit(f"needs the AT&T faces in {ATT}")
    return [(f"s{p}", path) for p in persons for path in sorted((ATT / f"s{p}").glob("*.png"), key=lambda q: int(q.stem))]


def map_points(matrix: np.ndarray, points) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points @ matrix[:, :2].T + matrix[:, 2]
