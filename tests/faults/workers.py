"""Child processes of the fault suite: ``python -m tests.faults.workers JOB ARGS``.

* ``enroll DB PREFIX COUNT [HANG_AT|- [START_FILE [PAUSE]]]``: enrol COUNT identities (3 encodings each, one transaction per enrolment)
  through :class:`visionkit.faces.db.FaceDatabase`, printing ``committed NAME TIME`` (CLOCK_MONOTONIC, shared by all processes) after each; with HANG_AT the
  enrolment of that identity stops between its 2nd and 3rd encoding - inside the open transaction - prints
  ``inside NAME`` and waits to be killed. With START_FILE it prints ``ready`` and waits for that file to exist
  before it opens the database (a common start for several processes); PAUSE seconds pass between enrolments.
* ``write PATH``: write PATH through :func:`visionkit.core.writers.atomic_path` slowly, printing ``writing`` once
  half of it is on disk, then waits to be killed.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def unit_vectors(seed: int, count: int = 3, dim: int = 8) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, dim))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def enroll(db: str, prefix: str, count: int, hang_at: int | None = None, start_file: str | None = None,
           pause: float = 0.0) -> None:
    import os

    from visionkit.faces.db import FaceDatabase

    if start_file:  # a starting line for several processes: print "ready", wait for the file
        print("ready", flush=True)
        while not os.path.exists(start_file):
            time.sleep(0.005)
    print(f"opening {time.monotonic():.6f}", flush=True)
    with FaceDatabase(db) as database:
        for index in range(count):
            name = f"{prefix}{index}"

            def vectors(index=index, name=name):
                for number, vector in enumerate(unit_vectors(hash(name) % 2**32)):
                    if index == hang_at and number == 2:
                        print(f"inside {name}", flush=True)
                        time.sleep(120)
                    yield vector

            database.enroll(name, vectors(), [f"{name}-{k}.jpg" for k in range(3)], model="fault-suite")
            print(f"committed {name} {time.monotonic():.6f}", flush=True)
            time.sleep(pause)  # the time a real enrolment spends finding and encoding faces, outside the transaction


def write(path: str) -> None:
    from visionkit.core.writers import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w") as handle:
            handle.write("row,of,a,new,file\n" * 50_000)
            handle.flush()
            print("writing", flush=True)
            time.sleep(120)
            handle.write("the rest\n")


if __name__ == "__main__":
    job, *args = sys.argv[1:]
    if job == "enroll":
        hang = int(args[3]) if len(args) > 3 and args[3] != "-" else None
        enroll(args[0], args[1], int(args[2]), hang, args[4] if len(args) > 4 else None,
               float(args[5]) if len(args) > 5 else 0.0)
    elif job == "write":
        write(args[0])
    else:
        raise SystemExit(f"unknown job {job!r}")
