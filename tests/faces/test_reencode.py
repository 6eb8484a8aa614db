"""Re-encoding a face database with another encoder: all or nothing, from the enrolled photos."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.conftest import make_tiny_encoder
from visionkit.core.errors import InputError, UsageError
from visionkit.faces import predict as faces
from visionkit.faces.db import FaceDatabase
from visionkit.faces.reencode import reencode


@pytest.fixture(scope="module")
def other_encoder(tmp_path_factory):
    """A second tiny encoder (40×40 in, 4-d out) standing in for another model."""
    return make_tiny_encoder(tmp_path_factory.mktemp("other") / "other.keras", size=40, dim=4, filters=4, kernel=5,
                             strides=4, seed=1, threshold=0.5, threshold_source="test", mirror=False)


def _enrolled(att, tmp_path, tiny_encoder):
    photos = tmp_path / "photos"
    photos.mkdir()
    for person, number in (("s1", 1), ("s1", 2), ("s2", 1)):
        shutil.copy(att / person / f"{number}.png", photos / f"{person}_{number}.png")
    db = tmp_path / "people.db"
    faces.enroll("alice", [str(photos / "s1_1.png"), str(photos / "s1_2.png")], db=db, model=tiny_encoder)
    faces.enroll("bob", [str(photos / "s2_1.png")], db=db, model=tiny_encoder)
    return db, photos


def test_reencode_replaces_every_encoding_and_the_model(att, tmp_path, tiny_encoder, other_encoder):
    db, photos = _enrolled(att, tmp_path, tiny_encoder)
    with pytest.raises(UsageError, match="faces reencode"):
        faces.identify([str(photos / "s2_1.png")], db=db, model=other_encoder)
    result = reencode(db, model=other_encoder)
    assert result.encodings == 3 and result.model == faces.encoder_name(other_encoder)
    assert result.previous_model == faces.encoder_name(tiny_encoder)
    with FaceDatabase(db) as database:
        vectors, _, names = database.matrix()
        assert database.model == result.model and database.dim == 4 and vectors.shape == (3, 4)
        assert [(i.name, i.encodings) for i in database.identities()] == [("alice", 2), ("bob", 1)]
    expected = faces.embed([str(photos / "s1_1.png")], model=other_encoder)[0].encodings[0]
    np.testing.assert_allclose(vectors[0], expected, atol=1e-6)
    [found] = faces.identify([str(photos / "s2_1.png")], db=db, model=other_encoder, threshold=1e-6)
    assert found.identity == "bob"
    assert reencode(db, model=other_encoder).encodings == 0  # already that model's: nothing to do


def test_reencode_is_all_or_nothing(att, tmp_path, tiny_encoder, other_encoder):
    db, photos = _enrolled(att, tmp_path, tiny_encoder)
    with FaceDatabase(db) as database:
        before = database.matrix()[0].copy()
    (photos / "s1_2.png").unlink()
    with pytest.raises(InputError, match=r"1 of 3 enrolled photos are no longer there .*s1_2\.png.*nothing was re-encoded"):
        reencode(db, model=other_encoder)
    from visionkit.core.io import save_image

    save_image(photos / "s1_2.png", np.full((112, 92, 3), 90, np.uint8))  # there again, but another picture
    with pytest.raises(InputError, match=r"1 enrolled photos cannot be re-encoded .*s1_2\.png \(alice\): the file "
                                         r"changed since it was enrolled; enrol alice again"):
        reencode(db, model=other_encoder)
    shutil.copy(att / "s1" / "2.png", photos / "s1_2.png")  # the enrolled photo again, but faces that small are not
    with pytest.raises(InputError, match=r"3 enrolled photos cannot be re-encoded .*s1_1\.png \(alice\): no face found "
                                         r"with min_face=300"):
        reencode(db, model=other_encoder, min_face=300)
    with FaceDatabase(db) as database:
        assert database.model == faces.encoder_name(tiny_encoder)
        np.testing.assert_array_equal(database.matrix()[0], before)


def test_database_refuses_a_reencode_that_does_not_cover_every_encoding(tmp_path):
    with FaceDatabase(tmp_path / "f.db") as database:
        database.enroll("a", np.eye(8)[:2], model="m")
        ids = [entry for entry, _, _ in database.entries()]
        with pytest.raises(InputError, match="changed while re-encoding"):
            database.reencode("n", {ids[0]: np.eye(4)[0]})
        assert database.model == "m" and database.dim == 8


def test_reencode_records_the_hashes_an_old_database_lacks(att, tmp_path, tiny_encoder, other_encoder):
    import sqlite3

    from visionkit.core.integrity import file_hash

    db, photos = _enrolled(att, tmp_path, tiny_encoder)
    with sqlite3.connect(db) as raw:  # as a database from before hashes were kept
        raw.execute("UPDATE encodings SET sha256 = ''")
    assert reencode(db, model=other_encoder).encodings == 3
    with FaceDatabase(db) as database:
        assert sorted(database.photo_hashes().values()) == sorted(file_hash(p) for p in photos.iterdir())
