"""An enrolled-faces database in one SQLite file: several encodings per identity, searched in one matrix product.

- The file is created with owner-only permissions (0600): face encodings are biometric data. SQLite gives its
  ``-wal``/``-shm`` companions the database file's permissions.
- WAL journal, ``synchronous=FULL``, foreign keys on. Every enrolment or removal is one ``BEGIN IMMEDIATE``
  transaction: a process killed half-way leaves the database as it was before that enrolment, and concurrent
  writers (other processes) wait for each other (``busy_timeout``) instead of losing rows.
- All encodings are cached as one float32 (N, d) array, reloaded only when the ``generation`` counter (bumped
  by every write, whichever process made it) changes. A search is ‖q‖² + ‖e‖² − 2·q·Eᵀ for all stored e at
  once, then an arg-min per query: 10⁵ encodings take a few milliseconds (see ``benchmarks/identify.py``).
- Encodings must be L2-normalised and all come from one model (its name is recorded at the first enrolment),
  because distances from two different encoders mean nothing together: another encoder is refused, naming both.
  Each encoding keeps the path of the photo it came from, so that :meth:`FaceDatabase.reencode` can replace every
  encoding with another encoder's (``visionkit faces reencode``) in one transaction.
- A photo is enrolled once: each encoding keeps the sha256 of its photo's file, and :meth:`FaceDatabase.add` leaves
  out (and reports) a photo whose content is stored already, under the same identity or another one. Encodings
  without a hash (databases from before schema 2, photos given as arrays) are matched by the same source and the
  same encoding instead (the same file through the same encoder gives the same encoding).
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from visionkit.core.errors import InputError, UsageError
from visionkit.faces.results import EnrolledIdentity

ENV_DB = "VISIONKIT_FACE_DB"
BUSY_TIMEOUT_S = 60.0
NORM_TOLERANCE = 1e-3
MAX_NAME_LENGTH = 200
SCHEMA_VERSION = "2"  # 2: encodings.sha256 (the photo's content), added to older files when opened
#: squared distance under which an encoding without a hash, from the same source, counts as the same photo: the
#: same file through the same encoder gives the same encoding up to float rounding; two photos lie far further apart.
SAME_ENCODING = 1e-4

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS encodings (
    id INTEGER PRIMARY KEY,
    identity INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    vector BLOB NOT NULL, source TEXT NOT NULL DEFAULT '', created REAL NOT NULL, sha256 TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS encodings_by_identity ON encodings(identity);
INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0');
"""


def default_db_path() -> Path:
    """``$VISIONKIT_FACE_DB``, else ``faces.db`` in the visionkit cache folder."""
    from visionkit.core.config import cache_dir

    configured = os.environ.get(ENV_DB)
    return Path(configured).expanduser() if configured else cache_dir() / "faces.db"


def _create_private(path: Path) -> None:
    """Create an empty file readable and writable by its owner only (no-op if another process made it first)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.fchmod(descriptor, 0o600)  # in case the umask was unusual
    os.close(descriptor)


def _open_with_retry(path: Path, set_up) -> sqlite3.Connection:
    """Connect and run ``set_up(connection)``, again while SQLite answers "locked"/"busy" (up to ``BUSY_TIMEOUT_S``):
    two processes switching a new file to WAL at once both hold a read lock and want the write lock, and SQLite
    answers one SQLITE_BUSY at once, as waiting could deadlock (https://www.sqlite.org/c3ref/busy_handler.html)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        connection = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            set_up(connection)
            return connection
        except sqlite3.OperationalError as error:
            connection.close()
            message = str(error).lower()
            if ("locked" not in message and "busy" not in message) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
        except BaseException:
            connection.close()
            raise


@dataclass(frozen=True)
class Added:
    """What :meth:`FaceDatabase.add` did: ``total`` encodings of ``name`` afterwards, ``added`` of them now, and the
    (index, identity) of each vector left out because its photo is enrolled already (under that identity)."""

    name: str
    total: int
    added: int
    already: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Match:
    """The nearest stored encoding of one query: its identity and squared distance."""

    name: str
    distance: float


class FaceDatabase:
    """``FaceDatabase(path)`` opens (or creates) the database; use as a context manager or call ``close()``."""

    def __init__(self, path: str | os.PathLike | None = None, create: bool = True):
        self.path = Path(path) if path is not None else default_db_path()
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a folder; --db must name a database file")
        if not self.path.exists():
            if not create:
                raise InputError(f"{self.path}: no such face database")
            _create_private(self.path)
        try:
            self._db = _open_with_retry(self.path, self._set_up)
        except sqlite3.DatabaseError as error:
            raise InputError(f"{self.path}: not a visionkit face database ({error})") from None
        self._cache: tuple[str, np.ndarray, np.ndarray, np.ndarray, list[str]] | None = None

    # --- plumbing ---

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "FaceDatabase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _set_up(self, connection: sqlite3.Connection) -> None:
        """WAL journal, full sync, foreign keys, the schema (one transaction)."""
        self._db = connection
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        self._write(self._create_schema, bump=False)

    def _write(self, action, bump: bool = True):
        """Run ``action`` inside one IMMEDIATE transaction (rolled back on any error)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if bump:
                self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
            result = action()
            self._db.execute("COMMIT")
            return result
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _create_schema(self) -> None:
        for statement in filter(str.strip, SCHEMA.split(";")):
            self._db.execute(statement)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(encodings)")}
        if "sha256" not in columns:  # a database from before schema 2: its encodings have no hash ('')
            self._db.execute("ALTER TABLE encodings ADD COLUMN sha256 TEXT NOT NULL DEFAULT ''")
        self._db.execute("CREATE INDEX IF NOT EXISTS encodings_by_sha256 ON encodings(sha256)")
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @property
    def model(self) -> str | None:
        """The encoder whose encodings this database holds (None before the first enrolment)."""
        return self._meta("model")

    @property
    def dim(self) -> int | None:
        value = self._meta("dim")
        return int(value) if value else None

    def check_model(self, model: str) -> None:
        stored = self.model
        if stored is not None and stored != model:
            raise UsageError(f"{self.path} holds encodings made with {stored!r}, not {model!r}, and distances from two "
                             f"encoders cannot be compared; use --model {stored} with this database, re-encode it "
                             f"from its photos with `visionkit faces reencode --db {self.path} --model {model}`, "
                             "or use another --db")

    # --- writing ---

    def enroll(self, name: str, vectors: Iterable[Sequence[float]], sources: Sequence[str] | None = None,
               model: str = "", hashes: Sequence[str] | None = None) -> int:
        """:meth:`add` for callers that need only the count: the encodings identity ``name`` holds afterwards."""
        return self.add(name, vectors, sources, model, hashes).total

    def add(self, name: str, vectors: Iterable[Sequence[float]], sources: Sequence[str] | None = None,
            model: str = "", hashes: Sequence[str] | None = None) -> Added:
        """Add encodings to identity ``name`` (created if new) in one transaction, leaving out photos stored already.

        ``sources[i]``/``hashes[i]`` are the photo and the sha256 of its file that ``vectors[i]`` came from (``''``:
        unknown). A vector whose photo is stored already (:meth:`owners`) is not added; :class:`Added` says under
        which identity it is. ``vectors`` may be an (n, d) array or any iterable of vectors; it is consumed inside
        the transaction, and a bad vector (wrong size, not finite, not unit length) rolls the whole enrolment back.
        """
        name = _check_name(name)
        sources, hashes = list(sources or []), list(hashes or [])

        def action() -> Added:
            stored_model, dim = self.model, self.dim
            if model and stored_model is None:
                self._db.execute("INSERT INTO meta(key, value) VALUES ('model', ?)", (model,))
            elif model:
                self.check_model(model)
            now = time.time()
            self._db.execute("INSERT OR IGNORE INTO identities(name, created) VALUES (?, ?)", (name, now))
            identity = self._db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()[0]
            state = {"dim": dim}
            rows, stored = [], []
            for index, vector in enumerate(vectors):
                blob = _vector_blob(vector, state)
                source = sources[index] if index < len(sources) else ""
                digest = hashes[index] if index < len(hashes) else ""
                owner = None
                if digest or source:  # a vector of no known photo is always added
                    owner = self._owner(digest, source, blob) or next(  # also a photo given twice in this call
                        (name for row in rows if _same_photo(row, digest, source, blob)), None)
                if owner is not None:
                    stored.append((index, owner))
                else:
                    rows.append((identity, blob, source, now, digest))
            if not rows and not stored:
                raise InputError(f"no encodings given for {name!r}")
            if rows and dim is None:
                self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('dim', ?)", (str(state["dim"]),))
            self._db.executemany("INSERT INTO encodings(identity, vector, source, created, sha256) "
                                 "VALUES (?, ?, ?, ?, ?)", rows)
            total = self._db.execute("SELECT COUNT(*) FROM encodings WHERE identity = ?", (identity,)).fetchone()[0]
            if total == 0:  # nothing added to a new identity: it is not kept
                self._db.execute("DELETE FROM identities WHERE id = ?", (identity,))
            return Added(name, int(total), len(rows), tuple(stored))

        added = self._write(action)
        self._cache = None
        return added

    def _owner(self, digest: str, source: str, blob: bytes) -> str | None:
        """The identity a photo is enrolled under already: the same file content (sha256), or for encodings stored
        without a hash the same source and the same encoding (squared distance ≤ :data:`SAME_ENCODING`)."""
        if digest:
            row = self._db.execute("SELECT i.name FROM encodings e JOIN identities i ON i.id = e.identity "
                                   "WHERE e.sha256 = ? LIMIT 1", (digest,)).fetchone()
            if row:
                return row[0]
        if source:
            for owner, stored in self._db.execute(
                    "SELECT i.name, e.vector FROM encodings e JOIN identities i ON i.id = e.identity "
                    "WHERE e.sha256 = '' AND e.source = ?", (source,)):
                if _same_encoding(stored, blob):
                    return owner
        return None

    def owners(self, hashes: Sequence[str]) -> dict[str, str]:
        """sha256 of a photo's file -> the identity it is enrolled under, for those of ``hashes`` stored already."""
        wanted = sorted({h for h in hashes if h})
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):  # SQLite's limit on bound parameters
            chunk = wanted[start:start + 500]
            found.update(self._db.execute(
                "SELECT e.sha256, i.name FROM encodings e JOIN identities i ON i.id = e.identity "
                f"WHERE e.sha256 IN ({', '.join('?' * len(chunk))})", chunk).fetchall())
        return found

    def remove(self, name: str) -> int:
        """Delete identity ``name`` and its encodings; returns how many encodings went."""
        def action() -> int:
            row = self._db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise InputError(f"{self.path}: no identity named {name!r} (see `visionkit faces list`)")
            count = self._db.execute("SELECT COUNT(*) FROM encodings WHERE identity = ?", (row[0],)).fetchone()[0]
            self._db.execute("DELETE FROM encodings WHERE identity = ?", (row[0],))
            self._db.execute("DELETE FROM identities WHERE id = ?", (row[0],))
            return int(count)

        removed = self._write(action)
        self._cache = None
        return removed

    def reencode(self, model: str, vectors: dict[int, Sequence[float]], hashes: dict[int, str] | None = None) -> int:
        """Replace every encoding (by id, as :meth:`entries` lists them) and the recorded model, in one transaction.

        ``hashes`` (id -> sha256 of the photo file just encoded) fills in the hash of encodings stored without one.
        Refused, with nothing changed, if the encodings given are not exactly those stored (another process enrolled
        or removed someone meanwhile) or any vector is bad. Returns how many encodings were replaced.
        """
        def action() -> int:
            stored = {row[0] for row in self._db.execute("SELECT id FROM encodings")}
            if stored != set(vectors):
                raise InputError(f"{self.path}: the database changed while re-encoding; nothing was replaced, run it again")
            state = {"dim": None, "count": 0}
            known = hashes or {}
            rows = [(_vector_blob(vector, state), known.get(entry, ""), entry) for entry, vector in vectors.items()]
            self._db.executemany("UPDATE encodings SET vector = ?, sha256 = CASE WHEN sha256 = '' THEN ? ELSE sha256 END "
                                 "WHERE id = ?", rows)
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('model', ?)", (model,))
            if state["dim"] is not None:
                self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('dim', ?)", (str(state["dim"]),))
            return len(rows)

        replaced = self._write(action)
        self._cache = None
        return replaced

    # --- reading ---

    def entries(self) -> list[tuple[int, str, str]]:
        """(encoding id, identity name, source photo) of every stored encoding, in enrolment order."""
        return [tuple(row) for row in self._db.execute(
            "SELECT e.id, i.name, e.source FROM encodings e JOIN identities i ON i.id = e.identity ORDER BY e.id")]

    def photo_hashes(self) -> dict[int, str]:
        """encoding id -> the sha256 of the photo file it was made from (``''``: not known, from before schema 2)."""
        return dict(self._db.execute("SELECT id, sha256 FROM encodings"))

    def identities(self) -> list[EnrolledIdentity]:
        rows = self._db.execute(
            "SELECT i.name, COUNT(e.id) FROM identities i LEFT JOIN encodings e ON e.identity = i.id "
            "GROUP BY i.id ORDER BY i.name").fetchall()
        return [EnrolledIdentity(name, int(count)) for name, count in rows]

    def count(self) -> int:
        """Number of stored encodings."""
        return int(self._db.execute("SELECT COUNT(*) FROM encodings").fetchone()[0])

    def matrix(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(encodings (N, d) float32, owner index (N,), identity names) — cached until any process writes."""
        generation = self._meta("generation")
        if self._cache is None or self._cache[0] != generation:
            self._db.execute("BEGIN")  # one consistent snapshot for the three reads
            try:
                generation = self._meta("generation")
                ids_names = self._db.execute("SELECT id, name FROM identities ORDER BY id").fetchall()
                rows = self._db.execute("SELECT identity, vector FROM encodings ORDER BY id").fetchall()
            finally:
                self._db.execute("COMMIT")
            position = {identity: i for i, (identity, _) in enumerate(ids_names)}
            dim = self.dim or 0
            vectors = np.frombuffer(b"".join(blob for _, blob in rows), dtype="<f4").reshape(len(rows), dim)
            owners = np.fromiter((position[identity] for identity, _ in rows), dtype=np.int64, count=len(rows))
            norms = np.einsum("ij,ij->i", vectors, vectors)
            self._cache = (generation, vectors, norms, owners, [name for _, name in ids_names])
        _, vectors, _, owners, names = self._cache
        return vectors, owners, names

    def search(self, queries: np.ndarray) -> list[Match]:
        """The nearest stored encoding's identity and squared distance for each query row (one matrix product)."""
        vectors, owners, names = self.matrix()
        if len(vectors) == 0:
            raise InputError(f"{self.path}: the face database is empty; enrol people first with `visionkit faces enroll`")
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if queries.shape[1] != vectors.shape[1]:
            raise InputError(f"query encodings have {queries.shape[1]} values, the database holds {vectors.shape[1]}")
        norms = self._cache[2]
        distances = norms[None, :] - 2.0 * (queries @ vectors.T)  # + ‖q‖², added after the arg-min
        best = np.argmin(distances, axis=1)
        query_norms = np.einsum("ij,ij->i", queries, queries)
        nearest = np.maximum(distances[np.arange(len(queries)), best] + query_norms, 0.0)
        return [Match(names[owners[b]], float(d)) for b, d in zip(best, nearest)]

    def check(self) -> dict:
        """Consistency report: SQLite integrity check, foreign keys, orphans, blob sizes."""
        integrity = self._db.execute("PRAGMA integrity_check").fetchone()[0]
        foreign = self._db.execute("PRAGMA foreign_key_check").fetchall()
        dim = self.dim
        bad_blobs = 0 if dim is None else self._db.execute(
            "SELECT COUNT(*) FROM encodings WHERE length(vector) != ?", (4 * dim,)).fetchone()[0]
        return {"integrity": integrity, "foreign_key_errors": len(foreign), "bad_vectors": int(bad_blobs),
                "identities": len(self.identities()), "encodings": self.count()}


def _check_name(name: str) -> str:
    text = str(name).strip()
    if not text or len(text) > MAX_NAME_LENGTH or any(ord(c) < 32 for c in text):
        raise UsageError(f"identity names must be 1–{MAX_NAME_LENGTH} printable characters, received {name!r}")
    return text


def _same_encoding(a: bytes, b: bytes) -> bool:
    x, y = np.frombuffer(a, "<f4"), np.frombuffer(b, "<f4")
    return x.shape == y.shape and float(np.sum((x.astype(np.float64) - y) ** 2)) <= SAME_ENCODING


def _same_photo(row: tuple, digest: str, source: str, blob: bytes) -> bool:
    """Whether a row about to be inserted, (identity, blob, source, created, sha256), is of the same photo."""
    if digest or row[4]:
        return digest == row[4]
    return bool(source) and source == row[2] and _same_encoding(row[1], blob)


def _vector_blob(vector, state: dict) -> bytes:
    array = np.asarray(vector, dtype=np.float64).reshape(-1)
    if state["dim"] is None:
        state["dim"] = int(array.size)
    if array.size != state["dim"]:
        raise InputError(f"encoding has {array.size} values, the database holds {state['dim']}-d encodings")
    if not np.all(np.isfinite(array)) or abs(float(np.linalg.norm(array)) - 1.0) > NORM_TOLERANCE:
        raise InputError("encodings must be finite and L2-normalised (unit length)")
    return array.astype("<f4").tobytes()


__all__ = ["FaceDatabase", "Added", "Match", "default_db_path", "ENV_DB"]
