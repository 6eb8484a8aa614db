"""face_distance / compare_faces: NumPy in, NumPy out, the toolkit's squared distance of unit encodings."""

from __future__ import annotations

import numpy as np
import pytest

import visionkit
from visionkit.core.errors import InputError, UsageError


def unit(rng, n, d=8):
    rows = rng.normal(size=(n, d))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_face_distance_by_hand():
    known = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    np.testing.assert_allclose(visionkit.face_distance(known, [1.0, 0.0]), [0.0, 2.0, 4.0], atol=1e-12)
    np.testing.assert_allclose(visionkit.face_distance([0.6, 0.8], [0.8, 0.6]), [0.08], atol=1e-12)  # one known row


def test_face_distance_is_the_squared_distance_of_every_row(rng):
    known, candidate = unit(rng, 50), unit(rng, 1)[0]
    np.testing.assert_allclose(visionkit.face_distance(known, candidate), ((known - candidate) ** 2).sum(axis=1))


def test_compare_faces_against_a_threshold_or_the_encoders(rng, tiny_encoder):
    known = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    assert visionkit.compare_faces(known, [1.0, 0.0], threshold=0.9).tolist() == [True, True, False]
    assert visionkit.compare_faces(known, [1.0, 0.0], threshold=0.5).tolist() == [True, False, False]
    # threshold=None: the encoder's own τ (the tiny test encoder's sidecar says 1.0)
    assert visionkit.compare_faces(known, [1.0, 0.0], model=tiny_encoder).tolist() == [True, True, False]
    with pytest.raises(UsageError, match=r"\[0, 4\]"):
        visionkit.compare_faces(known, [1.0, 0.0], threshold=5)


def test_bad_encodings_are_refused():
    with pytest.raises(InputError, match="L2-normalised.*raw dlib descriptors"):
        visionkit.face_distance([[1.4, 0.0]], [1.0, 0.0])
    with pytest.raises(InputError, match="known encodings have 3 values, the candidate 2"):
        visionkit.face_distance([[1.0, 0.0, 0.0]], [1.0, 0.0])
    with pytest.raises(InputError, match="candidate must be one encoding"):
        visionkit.face_distance([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(InputError, match="not finite"):
        visionkit.face_distance([[np.nan, 0.0]], [1.0, 0.0])
