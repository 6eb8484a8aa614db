"""The SQLite face database: permissions, transactions, vectorised search, crash safety, concurrent writers."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from visionkit.core.errors import InputError, UsageError
from visionkit.faces.db import FaceDatabase

REPO = Path(__file__).resolve().parents[2]


def unit(rng, n, d=16):
    v = rng.normal(size=(n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_file_is_private(tmp_path, rng):
    path = tmp_path / "sub" / "faces.db"
    with FaceDatabase(path) as db:
        db.enroll("alice", unit(rng, 2), model="m")
        for companion in (path, Path(f"{path}-wal")):
            if companion.exists():
                assert stat.S_IMODE(companion.stat().st_mode) == 0o600, companion


def test_enroll_list_search_remove(tmp_path, rng):
    alice, bob = unit(rng, 3), unit(rng, 2)
    with FaceDatabase(tmp_path / "f.db") as db:
        assert db.enroll("alice", alice, ["a1", "a2", "a3"], model="m") == 3
        assert db.enroll("bob", bob, model="m") == 2
        assert db.enroll("alice", unit(rng, 1), model="m") == 4
        assert [(i.name, i.encodings) for i in db.identities()] == [("alice", 4), ("bob", 2)]
        query = np.vstack([alice[1] + 0.01, bob[0]])
        matches = db.search(query)
        assert [m.name for m in matches] == ["alice", "bob"]
        assert matches[0].distance == pytest.approx(np.sum((query[0] - alice[1]) ** 2), abs=1e-5)
        assert matches[1].distance == pytest.approx(0.0, abs=1e-5)
        assert db.remove("bob") == 2
        assert db.search(bob[0])[0].name == "alice"
        with pytest.raises(InputError, match="no identity named 'bob'"):
            db.remove("bob")
        assert db.check() == {"integrity": "ok", "foreign_key_errors": 0, "bad_vectors": 0, "identities": 1, "encodings": 4}


def test_search_is_the_nearest_of_all_encodings(tmp_path, rng):
    stored = unit(rng, 300)
    names = [f"p{i % 37}" for i in range(300)]
    with FaceDatabase(tmp_path / "f.db") as db:
        for name in sorted(set(names)):
            db.enroll(name, stored[[i for i, n in enumerate(names) if n == name]], model="m")
        queries = unit(rng, 20)
        brute = [min(range(300), key=lambda i: np.sum((q - stored[i]) ** 2)) for q in queries]
        assert [m.name for m in db.search(queries)] == [names[i] for i in brute]


def test_empty_database_cannot_search(tmp_path):
    with FaceDatabase(tmp_path / "f.db") as db:
        with pytest.raises(InputError, match="empty"):
            db.search(np.ones(16) / 4)


def test_bad_vector_rolls_the_whole_enrolment_back(tmp_path, rng):
    with FaceDatabase(tmp_path / "f.db") as db:
        db.enroll("alice", unit(rng, 2), model="m")
        good_then_bad = list(unit(rng, 3)) + [np.ones(16)]  # the last one is not unit length
        with pytest.raises(InputError, match="L2-normalised"):
            db.enroll("carol", good_then_bad, model="m")
        with pytest.raises(InputError, match="16-d"):
            db.enroll("carol", unit(rng, 1, d=8), model="m")
        with pytest.raises(UsageError, match="holds encodings made with 'm', not 'other'.*--model m"):
            db.enroll("carol", unit(rng, 1), model="other")
        with pytest.raises(UsageError, match="identity names"):
            db.enroll("  ", unit(rng, 1), model="m")
        assert [(i.name, i.encodings) for i in db.identities()] == [("alice", 2)]


def test_cache_sees_writes_of_another_connection(tmp_path, rng):
    path = tmp_path / "f.db"
    with FaceDatabase(path) as reader, FaceDatabase(path) as writer:
        writer.enroll("alice", unit(rng, 1), model="m")
        assert reader.matrix()[0].shape == (1, 16)
        carol = unit(rng, 1)
        writer.enroll("carol", carol, model="m")
        assert reader.search(carol)[0].name == "carol"


def test_not_a_database(tmp_path):
    path = tmp_path / "f.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="not a visionkit face database"):
        FaceDatabase(path)
    with pytest.raises(InputError, match="no such face database"):
        FaceDatabase(tmp_path / "missing.db", create=False)


_ENROLLING_CHILD = """
import sys, time
import numpy as np
from pathlib import Path
from visionkit.faces.db import FaceDatabase

db = FaceDatabase(sys.argv[1])
marker = Path(sys.argv[2])
rng = np.random.default_rng(1)

def unit(n):
    v = rng.normal(size=(n, 16))
    return v / np.linalg.norm(v, axis=1, keepdims=True)

db.enroll("before", unit(5), model="m")

def slow_vectors():
    for i, v in enumerate(unit(400)):
        if i == 200:  # half-way through the enrolment's transaction
            marker.write_text("inside the transaction")
            time.sleep(120)
        yield v

db.enroll("victim", slow_vectors(), model="m")
"""


def _child_env():
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_kill_9_mid_enrolment_leaves_the_database_consistent(tmp_path, rng):
    path, marker = tmp_path / "f.db", tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", _ENROLLING_CHILD, str(path), str(marker)], env=_child_env())
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert child.poll() is None, "the enrolling process ended early"
            assert time.time() < deadline, "the enrolling process never reached the middle of its enrolment"
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    with FaceDatabase(path) as db:
        assert db.check() == {"integrity": "ok", "foreign_key_errors": 0, "bad_vectors": 0, "identities": 1, "encodings": 5}
        assert [(i.name, i.encodings) for i in db.identities()] == [("before", 5)]
        assert db.enroll("after", unit(rng, 2), model="m") == 2  # no lock left behind


_CONCURRENT_CHILD = """
import sys, time
import numpy as np
from visionkit.faces.db import FaceDatabase

path, tag, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
rng = np.random.default_rng(abs(hash(tag)) % 1000)
db = FaceDatabase(path)
while time.time() < start:
    time.sleep(0.005)
for i in range(40):
    v = rng.normal(size=(3, 16))
    db.enroll(f"{tag}-{i}", v / np.linalg.norm(v, axis=1, keepdims=True), model="m")
    w = rng.normal(size=16)
    db.enroll("shared", [w / np.linalg.norm(w)], model="m")
"""


def test_two_processes_enrolling_at_once_lose_nothing(tmp_path):
    path = tmp_path / "f.db"
    FaceDatabase(path).close()
    start = time.time() + 3.0
    children = [subprocess.Popen([sys.executable, "-c", _CONCURRENT_CHILD, str(path), tag, str(start)], env=_child_env(),
                                 stderr=subprocess.PIPE) for tag in ("x", "y")]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()[-2000:]
    with FaceDatabase(path) as db:
        counts = {i.name: i.encodings for i in db.identities()}
        assert counts.pop("shared") == 80
        assert counts == {f"{tag}-{i}": 3 for tag in ("x", "y") for i in range(40)}
        assert db.check()["integrity"] == "ok" and db.count() == 320


SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE identities (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE encodings (id INTEGER PRIMARY KEY, identity INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    vector BLOB NOT NULL, source TEXT NOT NULL DEFAULT '', created REAL NOT NULL);
INSERT INTO meta(key, value) VALUES ('schema', '1'), ('generation', '0'), ('model', 'm'), ('dim', '16');
INSERT INTO identities(id, name, created) VALUES (1, 'alice', 0);
"""


def test_a_photo_is_stored_once_by_its_hash(tmp_path, rng):
    a, b = unit(rng, 2)
    with FaceDatabase(tmp_path / "f.db") as db:
        first = db.add("alice", [a, b], ["/p/a.jpg", "/p/b.jpg"], model="m", hashes=["ha", "hb"])
        assert (first.total, first.added, first.already) == (2, 2, ())
        again = db.add("alice", [a, b, a], ["/p/a.jpg", "/copy/b.jpg", "/p/a.jpg"], model="m", hashes=["ha", "hb", "ha"])
        assert (again.total, again.added, again.already) == (2, 0, ((0, "alice"), (1, "alice"), (2, "alice")))
        c = unit(rng, 1)[0]  # the same path with other content (the file was replaced): a new photo
        assert db.add("alice", [c, c], ["/p/a.jpg"] * 2, model="m", hashes=["hc", "hc"]).already == ((1, "alice"),)
        other = db.add("bob", [a], ["/p/a.jpg"], model="m", hashes=["ha"])
        assert (other.total, other.added, other.already) == (0, 0, ((0, "alice"),))
        assert [(i.name, i.encodings) for i in db.identities()] == [("alice", 3)]  # no empty 'bob' left
        assert db.owners(["ha", "hx", ""]) == {"ha": "alice"}


def test_a_schema_1_database_gets_hashes_and_matches_its_photos_by_encoding(tmp_path, rng):
    import sqlite3

    path, (old, new) = tmp_path / "old.db", unit(rng, 2)
    with sqlite3.connect(path) as raw:
        raw.executescript(SCHEMA_1)
        raw.execute("INSERT INTO encodings(identity, vector, source, created) VALUES (1, ?, '/p/a.jpg', 0)",
                    (old.astype("<f4").tobytes(),))
    with FaceDatabase(path) as db:
        assert db._meta("schema") == "2" and db.photo_hashes() == {1: ""}
        assert db.add("alice", [old + 1e-4 / 16], ["/p/a.jpg"], model="m", hashes=["ha"]).already == ((0, "alice"),)
        assert db.add("bob", [old], ["/p/a.jpg"], model="m", hashes=["ha"]).already == ((0, "alice"),)
        assert db.add("alice", [old], ["/q/a.jpg"], model="m", hashes=["hq"]).added == 1  # another photo, same face
        assert db.add("alice", [new], ["/p/a.jpg"], model="m", hashes=["hn"]).added == 1  # the file changed since
        assert db.count() == 3 and db.check()["integrity"] == "ok"
