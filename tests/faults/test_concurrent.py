"""Two processes enrolling into one face database at the same moment."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from tests.faults.conftest import child_env


def _race(db, prefixes, start, pause: float):
    """Start one enrolling process per prefix (200 enrolments each), release them together; returns what they said."""
    processes = [subprocess.Popen([sys.executable, "-m", "tests.faults.workers", "enroll", str(db), prefix, "200", "-",
                                   str(start), str(pause)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=child_env(), cwd=REPO)
                 for prefix in prefixes]
    for process in processes:
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
    start.touch()  # both are waiting: they open (and maybe create) the database at the same moment
    outputs = [process.communicate(timeout=300) for process in processes]
    errors = "".join(err for _, err in outputs)
    assert [p.returncode for p in processes] == [0, 0], errors[-3000:]
    assert "locked" not in errors.lower() and errors.strip() == "", errors[-3000:]
    opened = [float(next(line for line in out.splitlines() if line.startswith("opening")).split()[1])
              for out, _ in outputs]
    commits = sorted((float(line.split()[2]), line.split()[1].rstrip("0123456789")) for out, _ in outputs
                     for line in out.splitlines() if line.startswith("committed"))
    assert len(commits) == 400
    last = {writer: max(t for t, w in commits if w == writer) for writer in prefixes}
    assert opened[0] < last[prefixes[1]] and opened[1] < last[prefixes[0]], "each was trying to write while the other wrote"
    start.unlink()
    return sum(1 for (_, x), (_, y) in zip(commits, commits[1:]) if x != y)


def test_two_processes_enrol_200_each_into_one_database(tmp_path, fault_row):
    from visionkit.faces.db import FaceDatabase

    db = tmp_path / "faces.db"  # does not exist yet: both processes race to create it too
    back_to_back = _race(db, ("a", "b"), tmp_path / "go", pause=0.0)
    paced = _race(db, ("c", "d"), tmp_path / "go", pause=0.005)
    with FaceDatabase(db) as database:
        names = {i.name for i in database.identities()}
        check = database.check()
    assert names == {f"{p}{i}" for p in "abcd" for i in range(200)}
    assert check["integrity"] == "ok" and check["encodings"] == 2400
    assert paced > 20, "with a pause between enrolments the two writers take turns"
    fault_row("two processes enrolling into one database",
              "two processes released at once on a database that does not exist yet, 200 enrolments each (3 encodings, "
              "one transaction each), back to back; then two more, with 5 ms between enrolments (a real one spends "
              "longer finding and encoding faces)",
              f"all four exit 0, nothing on stderr (no \"database is locked\"); commits switched writer {back_to_back} "
              f"time(s) back to back (SQLite's busy wait lets one writer run ahead while the other waits), {paced} times "
              "when paced",
              "one database: all 800 identities, 2,400 encodings, integrity ok")
