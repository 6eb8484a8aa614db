"""Faces: detect + align (:mod:`visionkit.faces.align`), encode, verify, enrol and identify.

Pipeline per image: load → MTCNN faces and 5 landmarks (Zhang et al. 2016, the ``mtcnn`` pip package, weights
inside it) → a similarity transform (rotation, uniform scale, translation; OpenCV ``estimateAffinePartial2D``)
that maps the landmarks onto a canonical template, cropped to the encoder's input → encoder → an L2-normalised
encoding. Two faces are the same person iff the squared distance of their encodings is ≤ τ (FaceNet).

No face found is a result of its own (``FaceDetections.faces == ()``) or an error naming the image — never an
encoding of the whole picture. Verify uses the *largest* face of each image and says so (``faces_in_a``, the
box used); ``on_multiple="error"`` refuses images with several faces instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from visionkit.core.errors import InputError, UsageError
from visionkit.core.io import ImageSource, as_sources, iter_images, load_image, source_name
from visionkit.core.model import LoadedModel, is_model_path, load_model
from visionkit.faces.align import (TEMPLATE_112, align_face, canonical_template, detect_faces,  # noqa: F401
                                   similarity_transform)
from visionkit.faces.config import (DEFAULT_BATCH_SIZE, DEFAULT_CROP_SIZE, DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_FACE,
                                    DEFAULT_MODEL, METHODS, ON_MULTIPLE)
from visionkit.faces.results import DetectedFace, EnrolledIdentity, FaceDetections, FaceEncodings, FaceIdentity, FaceMatch

#: Default thresholds of registry encoders that carry none in their file: name -> (τ, where it comes from).
PUBLISHED_THRESHOLDS = {
    "facenet_keras": (0.80, "deepface's tuning for these weights (cosine distance 0.40 = squared L2 0.80); "
                            "not measured by visionkit"),
}


# --- encoders ---------------------------------------------------------------------------------------------------


_ENCODERS: dict[str, LoadedModel] = {}


def load_encoder(model: "str | os.PathLike | LoadedModel" = DEFAULT_MODEL) -> LoadedModel:
    """A registry face encoder, a ``.keras`` file, or a loaded one; loaded once per process and reused.

    Its ``extra`` holds the verification threshold τ (``threshold``, ``threshold_source``): from the model file's
    sidecar, else the published value of registry weights (:data:`PUBLISHED_THRESHOLDS`), else none.
    """
    if isinstance(model, LoadedModel):
        return model
    key = os.fspath(model)
    if key not in _ENCODERS:
        _ENCODERS[key] = _load_encoder(key)
    return _ENCODERS[key]


def encoder_name(model: "str | os.PathLike | LoadedModel") -> str:
    """The name an encoder is known by (registry name, or the file's absolute path) without loading it."""
    from visionkit.core.registry import get_spec

    if isinstance(model, LoadedModel):
        return model.name
    if is_model_path(model):
        return str(Path(model).resolve())
    return get_spec(os.fspath(model)).name


def _load_encoder(name: str) -> LoadedModel:
    loaded = load_model(Path(name).resolve() if is_model_path(name) else name, task="face-encoder")
    extra = dict(loaded.extra or {})
    if extra.get("threshold") is None and loaded.spec.name in PUBLISHED_THRESHOLDS:
        extra["threshold"], extra["threshold_source"] = PUBLISHED_THRESHOLDS[loaded.spec.name]
    if extra.get("threshold") is not None:
        extra.setdefault("threshold_source", "model file")
    return replace(loaded, name=encoder_name(name), extra=extra)


def encode(encoder: LoadedModel, crops: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE,
           mirror: bool = True) -> np.ndarray:
    """Encodings (n, d) of aligned crops (n, h, w, 3).

    With ``mirror`` (the default) each encoding is the normalised mean of the crop's and its mirror image's,
    a standard test-time augmentation for aligned faces (they are nearly symmetric).
    """
    crops = np.asarray(crops, dtype=np.float32)
    size = encoder.input_size
    if crops.ndim != 4 or tuple(crops.shape[1:3]) != tuple(size):
        raise InputError(f"crops must be (n, {size[0]}, {size[1]}, 3), received {crops.shape}")
    if len(crops) == 0:
        return np.zeros((0, int(encoder.model.output_shape[-1])), np.float32)
    batches = [crops[i:i + batch_size] for i in range(0, len(crops), batch_size)]
    outputs = np.concatenate([encoder.predict(batch) for batch in batches])
    if mirror:
        outputs = outputs + np.concatenate([encoder.predict(batch[:, :, ::-1]) for batch in batches])
        outputs /= np.maximum(np.linalg.norm(outputs, axis=1, keepdims=True), 1e-12)
    return outputs.astype(np.float32)


def resolve_threshold(encoder: LoadedModel, threshold: float | None) -> tuple[float, str]:
    """The threshold to decide with, and where it came from: the caller's, else the model's."""
    from visionkit.faces.metrics import check_threshold

    if threshold is not None:
        try:
            return check_threshold(threshold), "given"
        except ValueError as error:
            raise UsageError(str(error)) from None
    if encoder.extra.get("threshold") is None:
        raise UsageError(f"no threshold is known for {encoder.name!r}; pass --threshold, or measure one with "
                         "`visionkit faces calibrate PAIRS --model ... --save-threshold eer`")
    return float(encoder.extra["threshold"]), encoder.extra["threshold_source"]


# --- images -> encodings ----------------------------------------------------------------------------------------


def encode_image(image: np.ndarray, encoder: LoadedModel, all_faces: bool = False, min_face: int = DEFAULT_MIN_FACE,
                 min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> tuple[tuple[DetectedFace, ...], np.ndarray, int]:
    """(faces used, their encodings, number of faces found) for one RGB image; the largest face unless ``all_faces``."""
    faces, _ = detect_faces(image, min_face, min_confidence)
    used = faces if all_faces else faces[:1]
    if not used:
        return (), np.zeros((0, int(encoder.model.output_shape[-1])), np.float32), 0
    crops = np.stack([align_face(image, face, encoder.input_size) for face in used])
    return used, encode(encoder, crops), len(faces)


def _no_face(name: str, min_face: int) -> str:
    return f"{name}: no face found (min_face={min_face} px); nothing was encoded"


def embed(images: ImageSource | Sequence[ImageSource], model: "str | LoadedModel" = DEFAULT_MODEL, all_faces: bool = False,
          min_face: int = DEFAULT_MIN_FACE, min_confidence: float = DEFAULT_MIN_CONFIDENCE, recursive: bool = False,
          on_progress: Callable[[int, int], None] | None = None) -> list[FaceEncodings]:
    """Encodings of the largest face (or ``all_faces``) of each image; "no face found" is an error per image."""
    encoder = load_encoder(model)
    sources = as_sources(images, recursive)
    results = []
    for index, item in enumerate(iter_images(sources)):
        name = source_name(sources[index], index)
        if not item.ok:
            results.append(FaceEncodings(name, model=encoder.name, error=item.error))
        else:
            faces, encodings, _ = encode_image(item.image, encoder, all_faces, min_face, min_confidence)
            error = None if faces else _no_face(name, min_face)
            results.append(FaceEncodings(name, faces, encodings if faces else None, encoder.name, error))
        if on_progress:
            on_progress(index + 1, len(sources))
    return results


def detect(images: ImageSource | Sequence[ImageSource], min_face: int = DEFAULT_MIN_FACE,
           min_confidence: float = DEFAULT_MIN_CONFIDENCE, largest: bool = False, recursive: bool = False,
           on_progress: Callable[[int, int], None] | None = None, crops: str | os.PathLike | None = None,
           crop_size: int = DEFAULT_CROP_SIZE) -> list[FaceDetections]:
    """Faces and landmarks of each image (all of them, largest first, or only the largest).

    ``crops``: also write each face aligned onto the template, ``crop_size`` pixels square, as
    ``<crops>/<stem>_<i>_<face>.png`` (``i`` counts the images with faces, ``face`` the faces of one image).
    """
    if crop_size < 32:
        raise UsageError(f"crop_size must be at least 32 pixels, received {crop_size}")
    sources = as_sources(images, recursive)
    results, with_faces = [], 0
    for index, item in enumerate(iter_images(sources)):
        name = source_name(sources[index], index)
        if item.ok:
            faces, upscaled = detect_faces(item.image, min_face, min_confidence)
            results.append(FaceDetections(name, faces[:1] if largest else faces, upscaled))
            if crops is not None and results[-1].faces:
                _write_crops(item.image, results[-1], Path(crops), with_faces, crop_size)
                with_faces += 1
        else:
            results.append(FaceDetections(name, error=item.error))
        if on_progress:
            on_progress(index + 1, len(sources))
    return results


def _write_crops(image: np.ndarray, result: FaceDetections, folder: Path, index: int, size: int) -> None:
    from visionkit.core.io import save_image

    for number, face in enumerate(result.faces):
        save_image(folder / f"{Path(result.source).stem}_{index}_{number}.png", align_face(image, face, (size, size)))


# --- verify -----------------------------------------------------------------------------------------------------


def verifier_paths(encoder: LoadedModel) -> list[Path]:
    """Where the logistic verifier of ``encoder`` is kept: beside the model file, else in the cache."""
    from visionkit.core.config import cache_dir

    stem = Path(encoder.name).stem if encoder.path is None else encoder.path.name.rsplit(".", 1)[0]
    paths = [encoder.path.with_name(f"{stem}.verifier.json")] if encoder.path is not None else []
    return paths + [cache_dir() / "models" / f"{stem}.verifier.json"]


def load_verifier(encoder: LoadedModel) -> dict:
    from visionkit.core.integrity import check_bundled

    for path in verifier_paths(encoder):
        if path.is_file():
            check_bundled(path)  # a bundled verifier must match pretrained/SHA256SUMS
            return json.loads(path.read_text())
    raise UsageError(f"no logistic verifier for {encoder.name!r}; fit one with "
                     "`visionkit faces calibrate PAIRS --method logistic`")


def logistic_probability(verifier: dict, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(same) = σ(w·|f(a) − f(b)| + b), the course's logistic-regression verifier."""
    features = np.abs(np.atleast_2d(a) - np.atleast_2d(b))
    logits = features @ np.asarray(verifier["coef"], dtype=np.float64) + float(verifier["intercept"])
    return 1.0 / (1.0 + np.exp(-logits))


def _face_of(source: ImageSource, label: str, encoder: LoadedModel, on_multiple: str, min_face: int,
             min_confidence: float):
    name = source_name(source, 0) if isinstance(source, (str, os.PathLike)) else f"<{label}>"
    image = load_image(source)
    faces, encodings, count = encode_image(image, encoder, False, min_face, min_confidence)
    if not faces:
        raise InputError(_no_face(name, min_face))
    if count > 1 and on_multiple == "error":
        raise InputError(f"{name}: {count} faces found; verify needs one face per image (crop it, or allow the "
                         "largest face to be used)")
    return name, faces[0], encodings[0], count


def verify(a: ImageSource, b: ImageSource, model: "str | LoadedModel" = DEFAULT_MODEL, threshold: float | None = None,
           method: str = "distance", on_multiple: str = "largest", min_face: int = DEFAULT_MIN_FACE,
           min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> FaceMatch:
    """Are ``a`` and ``b`` the same person? Squared distance of the largest faces' encodings against τ.

    ``threshold`` overrides the model's (it must lie in [0, 4]); ``method="logistic"`` decides with the fitted
    logistic verifier instead (P ≥ 0.5). Raises InputError when an image has no face or cannot be read.
    """
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if on_multiple not in ON_MULTIPLE:
        raise UsageError(f"on_multiple must be one of {', '.join(ON_MULTIPLE)}, received {on_multiple!r}")
    encoder = load_encoder(model)
    if method == "distance" or threshold is not None:
        tau, tau_source = resolve_threshold(encoder, threshold)
    else:  # logistic: the threshold is only reported
        tau, tau_source = encoder.extra.get("threshold"), encoder.extra.get("threshold_source", "")
    name_a, face_a, enc_a, count_a = _face_of(a, "a", encoder, on_multiple, min_face, min_confidence)
    name_b, face_b, enc_b, count_b = _face_of(b, "b", encoder, on_multiple, min_face, min_confidence)
    distance = float(np.sum((enc_a.astype(np.float64) - enc_b) ** 2))
    probability = None
    if method == "logistic":
        probability = float(logistic_probability(load_verifier(encoder), enc_a, enc_b)[0])
        same = probability >= 0.5
    else:
        same = distance <= tau
    return FaceMatch(name_a, name_b, distance, tau, bool(same), tau_source or "", encoder.name, method, probability,
                     face_a, face_b, count_a, count_b)


# --- database: enrol / identify ---------------------------------------------------------------------------------


def _open_db(db):
    from visionkit.faces.db import FaceDatabase

    return db if isinstance(db, FaceDatabase) else FaceDatabase(db)


def enroll(name: str, images: ImageSource | Sequence[ImageSource], db=None, model: "str | LoadedModel | None" = None,
           on_multiple: str = "error", min_face: int = DEFAULT_MIN_FACE, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
           recursive: bool = False, on_progress: Callable[[int, int], None] | None = None) -> EnrolledIdentity:
    """Add the face of each image to identity ``name`` in the database (one transaction for the lot).

    Images with no face, or with several faces (unless ``on_multiple="largest"``), are skipped and listed.
    ``model`` defaults to the database's model (or DEFAULT_MODEL for a new database).
    """
    if on_multiple not in ON_MULTIPLE:
        raise UsageError(f"on_multiple must be one of {', '.join(ON_MULTIPLE)}, received {on_multiple!r}")
    database = _open_db(db)
    database.check_model(encoder_name(model or database.model or DEFAULT_MODEL))
    encoder = load_encoder(model or database.model or DEFAULT_MODEL)
    sources = as_sources(images, recursive)
    vectors, used, skipped = [], [], []
    for index, item in enumerate(iter_images(sources)):
        label = source_name(sources[index], index)
        if not item.ok:
            skipped.append(item.error)
        else:
            faces, encodings, count = encode_image(item.image, encoder, False, min_face, min_confidence)
            if not faces:
                skipped.append(_no_face(label, min_face))
            elif count > 1 and on_multiple == "error":
                skipped.append(f"{label}: {count} faces found; enrolment needs one face per image")
            else:
                vectors.append(encodings[0])
                used.append(label)
        if on_progress:
            on_progress(index + 1, len(sources))
    if not vectors:
        raise InputError(f"nothing enrolled for {name!r}: " + "; ".join(skipped[:3]))
    total = database.enroll(name, np.stack(vectors), used, model=encoder.name)
    return EnrolledIdentity(name, total, len(vectors), tuple(skipped))


def identify(images: ImageSource | Sequence[ImageSource], db=None, model: "str | LoadedModel | None" = None,
             threshold: float | None = None, min_face: int = DEFAULT_MIN_FACE, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
             recursive: bool = False, on_progress: Callable[[int, int], None] | None = None) -> list[FaceIdentity]:
    """Every face of every image → the nearest enrolled identity if within τ, else ``unknown`` (one result per face)."""
    database = _open_db(db)
    if database.count() == 0:
        raise InputError(f"{database.path}: the face database is empty; enrol people first with `visionkit faces enroll`")
    database.check_model(encoder_name(model or database.model))
    encoder = load_encoder(model or database.model)
    tau, _ = resolve_threshold(encoder, threshold)
    sources = as_sources(images, recursive)
    results: list[FaceIdentity] = []
    for index, item in enumerate(iter_images(sources)):
        label = source_name(sources[index], index)
        if not item.ok:
            results.append(FaceIdentity(label, error=item.error))
        else:
            faces, encodings, _ = encode_image(item.image, encoder, True, min_face, min_confidence)
            if not faces:
                results.append(FaceIdentity(label, error=_no_face(label, min_face)))
            for i, (face, match) in enumerate(zip(faces, database.search(encodings))):
                known = match.distance <= tau
                results.append(FaceIdentity(label, i, face, match.name if known else "unknown", match.distance, tau, match.name))
        if on_progress:
            on_progress(index + 1, len(sources))
    return results


__all__ = ["detect_faces", "align_face", "canonical_template", "similarity_transform", "load_encoder", "encode",
           "embed", "detect", "verify", "enroll", "identify", "DEFAULT_MODEL", "TEMPLATE_112"]
