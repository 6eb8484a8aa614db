"""Faces end to end with MTCNN and a tiny encoder: alignment geometry, detection, embed, verify, enrol, identify."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import two_faces
from visionkit.core.errors import ImageError, InputError, UsageError
from visionkit.core.io import load_image
from visionkit.faces import predict as faces


def test_similarity_transform_recovers_a_known_similarity():
    template = faces.canonical_template((160, 160))
    np.testing.assert_allclose(template, faces.TEMPLATE_112 * 160 / 112, rtol=1e-6)
    angle, scale, shift = np.deg2rad(20), 0.6, np.array([30.0, -12.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = (template - shift) @ np.linalg.inv(rotation).T  # template = R·landmarks + shift
    matrix = faces.similarity_transform(landmarks, (160, 160))
    mapped = landmarks @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, template, atol=1e-3)


def test_align_face_puts_landmarks_on_the_template():
    from visionkit.faces.results import DetectedFace

    image = np.zeros((200, 240, 3), np.uint8)
    landmarks = np.array([[90, 80], [140, 90], [112, 115], [92, 140], [132, 148]], dtype=np.float64)
    for x, y in landmarks.astype(int):
        image[y - 1:y + 2, x - 1:x + 2] = 255
    face = DetectedFace((60, 40, 170, 180), 0.99, tuple(map(tuple, landmarks)))
    crop = faces.align_face(image, face, (112, 112))
    assert crop.shape == (112, 112, 3)
    matrix = faces.similarity_transform(landmarks, (112, 112))
    for x, y in landmarks @ matrix[:, :2].T + matrix[:, 2]:
        assert crop[int(round(y)), int(round(x))].max() > 100  # each landmark's dot lands where the transform says


def test_detect_one_att_face(att):
    image = load_image(att / "s1" / "1.png")
    found, upscaled = faces.detect_faces(image)
    assert len(found) == 1 and not upscaled
    face = found[0]
    assert 0 <= face.box[0] < face.box[2] <= image.shape[1] + 2 and face.score >= faces.DEFAULT_MIN_CONFIDENCE
    eyes_y = (face.landmarks[0][1] + face.landmarks[1][1]) / 2
    mouth_y = (face.landmarks[3][1] + face.landmarks[4][1]) / 2
    assert face.landmarks[0][0] < face.landmarks[1][0] and eyes_y < face.landmarks[2][1] < mouth_y
    assert faces.detect_faces(image, min_face=100)[0] == ()  # faces narrower than 100 px are dropped


def test_a_large_min_face_still_finds_large_faces():
    """The mtcnn package returns nothing when asked for faces ≥ 28 px on this photo: search from 20, then filter."""
    from tests.conftest import REPO

    image = load_image(REPO / "examples" / "astronaut.jpg")
    for min_face in (20, 40, 80):
        found, _ = faces.detect_faces(image, min_face=min_face)
        assert len(found) == 1 and 80 < found[0].width < 90, min_face  # the 84-px face
    assert faces.detect_faces(image, min_face=90)[0] == ()


def test_blank_image_is_no_face_found_not_an_encoding(tiny_encoder):
    blank = np.full((120, 100, 3), 200, np.uint8)
    [detections] = faces.detect([blank])
    assert detections.ok and detections.faces == () and detections.to_dict()["note"] == "no face found"
    [encoded] = faces.embed([blank], model=tiny_encoder)
    assert not encoded.ok and "no face found" in encoded.error and encoded.encodings is None
    with pytest.raises(InputError, match="no face found"):
        faces.verify(blank, blank, model=tiny_encoder)


def test_embed_gives_unit_encodings_and_reports_bad_files(att, tiny_encoder, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    results = faces.embed([str(att / "s1" / "1.png"), str(bad)], model=tiny_encoder)
    assert results[0].ok and results[0].encodings.shape == (1, 8)
    np.testing.assert_allclose(np.linalg.norm(results[0].encodings, axis=1), 1.0, atol=1e-5)
    assert not results[1].ok and "bad.jpg" in results[1].error


def test_verify_same_image_and_thresholds(att, tiny_encoder, tmp_path):
    path = str(att / "s3" / "2.png")
    match = faces.verify(path, path, model=tiny_encoder)
    assert match.distance == pytest.approx(0.0, abs=1e-6) and match.same is True
    assert match.threshold == 1.0 and match.threshold_source == "test" and match.faces_in_a == 1
    other = faces.verify(path, str(att / "s4" / "1.png"), model=tiny_encoder, threshold=0.0)
    assert other.threshold_source == "given" and other.same is False and 0 < other.distance <= 4
    first, second = faces.embed([path, str(att / "s4" / "1.png")], model=tiny_encoder)  # the same encodings
    assert other.distance == pytest.approx(float(np.sum((first.encodings[0] - second.encodings[0]) ** 2)), abs=1e-6)
    for bad in (4.5, -0.1, float("nan")):
        with pytest.raises(UsageError, match=r"\[0, 4\]"):
            faces.verify(path, path, model=tiny_encoder, threshold=bad)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ImageError):
        faces.verify(path, str(text), model=tiny_encoder)


def test_verify_with_two_faces_uses_the_largest_or_refuses(att, tiny_encoder):
    canvas = two_faces(att)
    found, _ = faces.detect_faces(canvas)
    assert len(found) == 2 and found[0].area > found[1].area and found[0].box[0] < 200
    match = faces.verify(canvas, str(att / "s1" / "1.png"), model=tiny_encoder)
    assert match.faces_in_a == 2 and match.face_a.box == found[0].box
    with pytest.raises(InputError, match="2 faces found"):
        faces.verify(canvas, str(att / "s1" / "1.png"), model=tiny_encoder, on_multiple="error")


def test_enroll_identify_unknown_and_empty(att, tiny_encoder, tmp_path):
    from visionkit.faces.db import FaceDatabase

    db = tmp_path / "faces.db"
    with pytest.raises(InputError, match="no such face database"):
        faces.identify([str(att / "s1" / "1.png")], db=db, model=tiny_encoder)
    assert not db.exists()  # identify creates nothing
    FaceDatabase(db).close()
    with pytest.raises(InputError, match="empty"):
        faces.identify([str(att / "s1" / "1.png")], db=db, model=tiny_encoder)
    blank = np.full((100, 100, 3), 90, np.uint8)
    with pytest.raises(InputError, match="nothing enrolled for 'nobody'.*no face found"):
        faces.enroll("nobody", [blank], db=tmp_path / "new.db", model=tiny_encoder)
    assert not (tmp_path / "new.db").exists()  # nothing to store: no file either
    enrolled = faces.enroll("alice", [str(att / "s1" / "1.png"), blank], db=db, model=tiny_encoder)
    assert enrolled.encodings == 1 and enrolled.added == 1 and "no face found" in enrolled.skipped[0]
    faces.enroll("bob", [str(att / "s2" / "1.png")], db=db, model=tiny_encoder)
    results = faces.identify([str(att / "s1" / "1.png"), two_faces(att)], db=db, model=tiny_encoder, threshold=1e-6)
    assert results[0].identity == "alice" and results[0].distance == pytest.approx(0.0, abs=1e-5)
    assert len(results) == 3  # every face of the second image gets its own answer
    assert all(r.nearest in ("alice", "bob") for r in results)
    assert all(r.identity == "unknown" for r in results[1:] if r.distance > 1e-6)
    with FaceDatabase(db) as database:
        assert database.model == faces.load_encoder(tiny_encoder).name
        stored = [source for _, _, source in database.entries()]
        assert stored == [str((att / f"s{k}" / "1.png").resolve()) for k in (1, 2)]  # resolved: reencode re-reads them
    tiny = faces.load_encoder(tiny_encoder).name
    for other in ("facenet_keras", None):  # None: the default encoder, dlib_resnet_v1
        with pytest.raises(UsageError, match=f"made with '{tiny}', not '{other or faces.DEFAULT_MODEL}'.*--model {tiny}"
                                             ".*faces reencode"):
            faces.identify([str(att / "s1" / "1.png")], db=db, **({"model": other} if other else {}))
