"""Faces: detect + align (:mod:`visionkit.faces.align`), encode, verify, enrol and identify.

Pipeline per image: load → MTCNN faces and 5 landmarks (Zhang et al. 2016, the ``mtcnn`` pip package, weights
inside it) → a similarity transform (rotation, uniform scale, translation; OpenCV ``estimateAffinePartial2D``)
that maps the landmarks onto the encoder's template, cropped to the encoder's input → encoder → an L2-normalised
encoding. Two faces are the same person iff the squared distance of their encodings is ≤ τ (FaceNet).

Encoders, what each needs besides its weights (template, border, mirror, threshold) and their calibration files:
:mod:`visionkit.faces.encoder`.

No face found is a result of its own (``FaceDetections.faces == ()``) or an error naming the image — never an
encoding of the whole picture. Verify uses the *largest* face of each image and says so (``faces_in_a``, the
box used); ``on_multiple="error"`` refuses images with several faces instead.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from visionkit.core.errors import InputError, UsageError
from visionkit.core.io import ImageSource, as_sources, iter_images, load_image, source_name
from visionkit.core.model import LoadedModel
from visionkit.faces.align import (TEMPLATE_112, align_face, canonical_template, detect_faces,  # noqa: F401
                                   similarity_transform)
from visionkit.faces.config import (DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_FACE, DEFAULT_MODEL,  # noqa: F401
                                    DEFAULT_BATCH_SIZE, METHODS, ON_MULTIPLE)
from visionkit.faces.encoder import (encode, encoder_alignment, encoder_name, load_encoder, load_verifier,  # noqa: F401
                                     logistic_probability, resolve_threshold, verifier_paths)
from visionkit.faces.results import DetectedFace, EnrolledIdentity, FaceDetections, FaceEncodings, FaceIdentity, FaceMatch


# --- images -> encodings ----------------------------------------------------------------------------------------


def encode_image(image: np.ndarray, encoder: LoadedModel, all_faces: bool = False, min_face: int = DEFAULT_MIN_FACE,
                 min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> tuple[tuple[DetectedFace, ...], np.ndarray, int]:
    """(faces used, their encodings, number of faces found) for one RGB image; the largest face unless ``all_faces``."""
    faces, _ = detect_faces(image, min_face, min_confidence)
    used = faces if all_faces else faces[:1]
    if not used:
        return (), np.zeros((0, int(encoder.model.output_shape[-1])), np.float32), 0
    alignment = encoder_alignment(encoder)
    crops = np.stack([align_face(image, face, encoder.input_size, alignment) for face in used])
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
           crop_size: int | None = None, model: "str | os.PathLike | LoadedModel" = DEFAULT_MODEL) -> list[FaceDetections]:
    """Faces and landmarks of each image (all of them, largest first, or only the largest).

    ``crops``: also write each face as encoder ``model`` takes it — aligned onto its template, at its input size
    (``crop_size`` pixels square instead, if given), its border fill outside the image — as
    ``<crops>/<stem>_<i>_<face>.png`` (``i`` counts the images with faces, ``face`` the faces of one image). The
    encoder is loaded only for crops.
    """
    if crop_size is not None and crop_size < 32:
        raise UsageError(f"crop_size must be at least 32 pixels, received {crop_size}")
    cut = None
    if crops is not None:
        encoder = load_encoder(model)
        cut = ((crop_size, crop_size) if crop_size else encoder.input_size, encoder_alignment(encoder))
    sources = as_sources(images, recursive)
    results, with_faces = [], 0
    for index, item in enumerate(iter_images(sources)):
        name = source_name(sources[index], index)
        if item.ok:
            faces, upscaled = detect_faces(item.image, min_face, min_confidence)
            results.append(FaceDetections(name, faces[:1] if largest else faces, upscaled))
            if cut is not None and results[-1].faces:
                _write_crops(item.image, results[-1], Path(crops), with_faces, *cut)
                with_faces += 1
        else:
            results.append(FaceDetections(name, error=item.error))
        if on_progress:
            on_progress(index + 1, len(sources))
    return results


def _write_crops(image: np.ndarray, result: FaceDetections, folder: Path, index: int, size, alignment) -> None:
    from visionkit.core.io import save_image

    for number, face in enumerate(result.faces):
        save_image(folder / f"{Path(result.source).stem}_{index}_{number}.png", align_face(image, face, size, alignment))


# --- verify -----------------------------------------------------------------------------------------------------


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


@contextlib.contextmanager
def opened_db(db, create: bool = True):
    """The database ``db`` (a FaceDatabase, a path, or None for the default file), closed afterwards if opened here."""
    from visionkit.faces.db import FaceDatabase

    if isinstance(db, FaceDatabase):
        yield db
        return
    database = FaceDatabase(db, create=create)
    try:
        yield database
    finally:
        database.close()


def _photo_path(source: ImageSource, label: str) -> str:
    """What a database keeps of a photo: its resolved absolute path (re-read by ``reencode``), else its label."""
    return os.path.realpath(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else label


def _photo_hash(source: ImageSource) -> str:
    """The sha256 of a photo file's bytes ('' for a photo given as an array or bytes, or a file that cannot be read)."""
    from visionkit.core.integrity import file_hash

    if not isinstance(source, (str, os.PathLike)):
        return ""
    try:
        return file_hash(source)
    except OSError:
        return ""  # unreadable: reported when it is decoded


def enroll(name: str, images: ImageSource | Sequence[ImageSource], db=None, model: "str | LoadedModel" = DEFAULT_MODEL,
           on_multiple: str = "error", min_face: int = DEFAULT_MIN_FACE, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
           recursive: bool = False, on_progress: Callable[[int, int], None] | None = None) -> EnrolledIdentity:
    """Add the face of each image to identity ``name`` in the database (one transaction for the lot).

    Images with no face, or with several faces (unless ``on_multiple="largest"``), are skipped and listed. A photo
    enrolled already (the same file content; see :mod:`visionkit.faces.db`) is left out: listed in
    ``already_enrolled`` when it is ``name``'s, refused and listed in ``skipped`` when it is another identity's (one
    photo cannot stand for two people). Enrolling photos that are all ``name``'s already is not an error. A database
    holding another encoder's encodings is refused (naming both; see ``faces reencode``); a new database file is
    created only when something is enrolled.
    """
    from visionkit.faces.db import FaceDatabase, default_db_path

    if on_multiple not in ON_MULTIPLE:
        raise UsageError(f"on_multiple must be one of {', '.join(ON_MULTIPLE)}, received {on_multiple!r}")
    sources = as_sources(images, recursive)
    hashes = [_photo_hash(source) for source in sources]
    owners: dict[str, str] = {}
    if isinstance(db, FaceDatabase) or Path(db if db is not None else default_db_path()).exists():
        with opened_db(db, create=False) as database:  # refuse another encoder's database before encoding anything
            database.check_model(encoder_name(model or DEFAULT_MODEL))
            owners = database.owners(hashes)  # photos stored already need no encoding
    encoder = load_encoder(model or DEFAULT_MODEL)
    labels = [source_name(source, index) for index, source in enumerate(sources)]
    vectors, used, skipped, already = [], [], [], []

    def stored_under(owner: str, label: str) -> None:
        if owner == str(name).strip():  # as the database keeps names
            already.append(label)
        else:
            skipped.append(f"{label}: already enrolled as {owner!r}; one photo cannot stand for two identities "
                           f"(not enrolled for {name!r})")

    for index, digest in enumerate(hashes):
        if digest in owners:
            stored_under(owners[digest], labels[index])
    wanted = [index for index, digest in enumerate(hashes) if digest not in owners]
    for done, (index, item) in enumerate(zip(wanted, iter_images([sources[i] for i in wanted]))):
        label = labels[index]
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
                used.append(index)
        if on_progress:
            on_progress(len(sources) - len(wanted) + done + 1, len(sources))
    if vectors:
        with opened_db(db) as database:  # created only now, when there is something to store
            added = database.add(name, np.stack(vectors), [_photo_path(sources[i], labels[i]) for i in used],
                                 model=encoder.name, hashes=[hashes[i] for i in used])
        for position, owner in added.already:  # stored by another process meanwhile, or given twice
            stored_under(owner, labels[used[position]])
        total, count = added.total, added.added
    else:
        total, count = (_encodings_of(db, name) if already else 0), 0
    if not count and not already:
        raise InputError(f"nothing enrolled for {name!r}: " + "; ".join(skipped[:3]))
    return EnrolledIdentity(name, total, count, tuple(skipped), tuple(already))


def _encodings_of(db, name: str) -> int:
    with opened_db(db, create=False) as database:
        return next((i.encodings for i in database.identities() if i.name == name), 0)


def identify(images: ImageSource | Sequence[ImageSource], db=None, model: "str | LoadedModel" = DEFAULT_MODEL,
             threshold: float | None = None, min_face: int = DEFAULT_MIN_FACE, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
             recursive: bool = False, on_progress: Callable[[int, int], None] | None = None) -> list[FaceIdentity]:
    """Every face of every image → the nearest enrolled identity if within τ, else ``unknown`` (one result per face).

    The database must exist and hold encodings of ``model``'s (another encoder's are refused, naming both).
    """
    with opened_db(db, create=False) as database:
        if database.count() == 0:
            raise InputError(f"{database.path}: the face database is empty; enrol people first with `visionkit faces enroll`")
        database.check_model(encoder_name(model or DEFAULT_MODEL))
        encoder = load_encoder(model or DEFAULT_MODEL)
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
                    results.append(FaceIdentity(label, i, face, match.name if known else "unknown", match.distance, tau,
                                                match.name))
            if on_progress:
                on_progress(index + 1, len(sources))
    return results


def __getattr__(name: str):
    if name == "PUBLISHED_THRESHOLDS":  # 0.1: now the registry's `extra` (see visionkit.faces.encoder)
        from visionkit.faces import encoder

        return encoder.PUBLISHED_THRESHOLDS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["detect_faces", "align_face", "canonical_template", "similarity_transform", "load_encoder", "encode",
           "embed", "detect", "verify", "enroll", "identify", "DEFAULT_MODEL", "TEMPLATE_112"]
