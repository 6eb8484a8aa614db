"""NumPy in, NumPy out: distances and same/different decisions between encodings you already have.

The two verbs of ``face_recognition`` (``face_distance``, ``compare_faces``) with this toolkit's metric: the squared
Euclidean distance of L2-normalised encodings, d ∈ [0, 4], "same person" iff d ≤ τ (FaceNet, Schroff et al. 2015).
dlib's and face_recognition's 0.6 is a Euclidean distance of raw descriptors; for ``dlib_resnet_v1`` its equivalent
here is the encoder's default τ (see its model card).
"""

from __future__ import annotations

import os

import numpy as np

from visionkit.core.errors import InputError
from visionkit.core.model import LoadedModel
from visionkit.faces.config import DEFAULT_MODEL

NORM_TOLERANCE = 1e-3


def _unit_rows(values, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] == 0:
        raise InputError(f"{what} must be one encoding (d,) or several (n, d), received shape {np.shape(values)}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{what} holds values that are not finite")
    norms = np.linalg.norm(array, axis=1)
    if array.shape[0] and np.abs(norms - 1.0).max() > NORM_TOLERANCE:
        raise InputError(f"{what} must be L2-normalised, as visionkit.embed returns them; received norms "
                         f"{norms.min():.3g}–{norms.max():.3g} (raw dlib descriptors? divide each by its norm)")
    return array


def face_distance(known, candidate) -> np.ndarray:
    """Squared distances (n,) from each of the ``known`` encodings ((n, d) or (d,)) to one ``candidate`` (d,)."""
    known_rows = _unit_rows(known, "known")
    candidate_row = _unit_rows(candidate, "candidate")
    if candidate_row.shape[0] != 1:
        raise InputError(f"candidate must be one encoding (d,), received shape {np.shape(candidate)}")
    if known_rows.shape[1] != candidate_row.shape[1]:
        raise InputError(f"known encodings have {known_rows.shape[1]} values, the candidate {candidate_row.shape[1]}; "
                         "were they made by the same encoder?")
    difference = known_rows - candidate_row
    return np.einsum("ij,ij->i", difference, difference)


def compare_faces(known, candidate, threshold: float | None = None,
                  model: "str | os.PathLike | LoadedModel" = DEFAULT_MODEL) -> np.ndarray:
    """``face_distance(known, candidate) <= τ`` as a boolean array (n,).

    ``threshold`` τ is a squared distance in [0, 4]; None takes the default of ``model`` (the encoder that made the
    encodings; it is loaded once per process to read it).
    """
    from visionkit.faces.encoder import load_encoder, resolve_threshold

    distances = face_distance(known, candidate)
    tau, _ = resolve_threshold(load_encoder(model) if threshold is None else None, threshold)
    return distances <= tau


__all__ = ["face_distance", "compare_faces"]
