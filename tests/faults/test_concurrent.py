"""Two processes enrolling into one face database at the same moment."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from tests.faults.conftest import child_env


def test_two_processes_enrol_200_each_into_one_database(tmp_path, fault_row):
    from visionkit.faces.db import FaceDatabase

    db = tmp_path / "faces.db"  # does not exist yet: both processes race to create it too
    start = tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-m", "tests.faults.workers", "enroll", str(db), prefix, "200", "-",
                                   str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=child_env(), cwd=REPO)
                 for prefix in ("a", "b")]
    for process in processes:
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
    start.touch()  # both are waiting: they open (and create) the database at the same moment
    outputs = [process.communicate(timeout=300) for process in processes]
    errors = "".join(err for _, err in outputs)
    assert [p.returncode for p in processes] == [0, 0], errors[-3000:]
    assert "locked" not in errors.lower() and errors.strip() == "", errors[-3000:]
    committed = sum(out.count("committed") for out, _ in outputs)
    opened = [float(next(line for line in out.splitlines() if line.startswith("opening")).split()[1])
              for out, _ in outputs]
    commits = sorted((float(line.split()[2]), line.split()[1][0]) for out, _ in outputs
                     for line in out.splitlines() if line.startswith("committed"))
    last = {writer: max(t for t, w in commits if w == writer) for writer in "ab"}
    assert opened[0] < last["b"] and opened[1] < last["a"], "each writer was trying to write while the other wrote"
    switches = sum(1 for (_, x), (_, y) in zip(commits, commits[1:]) if x != y)
    with FaceDatabase(db) as database:
        names = {i.name for i in database.identities()}
        check = database.check()
    assert committed == 400 and names == {f"{p}{i}" for p in "ab" for i in range(200)}
    assert check["integrity"] == "ok" and check["encodings"] == 1200
    fault_row("two processes enrolling into one database",
              "two processes start at once on a database that does not exist yet; each makes 200 enrolments "
              "(3 encodings each, one transaction each)",
              f"both exit 0, nothing on stderr (no \"database is locked\"); each was trying to write while the other "
              f"wrote (commits switched writer {switches} time(s): back to back, SQLite's busy wait lets one writer run ahead)",
              "one database: all 400 identities, 1,200 encodings, integrity ok")
