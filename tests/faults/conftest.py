"""The fault suite: what was done, what the user saw, what was on disk afterwards - one row per case.

Every test asserts the behaviour and calls ``fault_row(case, done, saw, disk)`` with what it actually observed. With
``VISIONKIT_FAULT_TABLE=FILE`` the rows are appended to FILE as JSON lines; ``python benchmarks/fault_table.py`` runs
this suite that way and prints README's table ("Reliability: what was tried").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import REPO

TABLE_ENV = "VISIONKIT_FAULT_TABLE"


@pytest.fixture
def fault_row(request):
    """``fault_row(case, done, saw, disk)``: one row of the fault table, in the order the tests run."""
    def record(case: str, done: str, saw: str, disk: str) -> None:
        target = os.environ.get(TABLE_ENV)
        if target:
            row = {"test": request.node.nodeid, "case": case, "done": done, "saw": saw, "disk": disk}
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    return record


def child_env(**extra: str) -> dict:
    """The environment of a child process: this repository importable, one CPU thread each, quiet TensorFlow."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}
    env.update(extra)
    return env


def cli(*args) -> list[str]:
    """The command line of ``visionkit ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "visionkit", *map(str, args)]


def run(command: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=REPO, timeout=timeout)


def kill_when(command: list[str], ready: Callable[[], bool], timeout: float = 240, poll: float = 0.02,
              stdout_line: str | None = None) -> tuple[int, str]:
    """Start ``command`` and SIGKILL it as soon as ``ready()`` holds (or it prints a line starting with
    ``stdout_line``); returns (exit status, stderr so far). Fails the test if the command ends first."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
                               cwd=REPO)
    deadline = time.monotonic() + timeout
    try:
        if stdout_line is not None:
            for line in process.stdout:
                if line.startswith(stdout_line):
                    break
        else:
            while not ready():
                assert process.poll() is None, f"{command[3:]} ended before the kill: {process.stderr.read()[-2000:]}"
                assert time.monotonic() < deadline, "the command never reached the point of the kill"
                time.sleep(poll)
        os.kill(process.pid, signal.SIGKILL)  # kill -9: no handler, no cleanup runs
        process.wait(timeout=30)
        return process.returncode, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def listing(folder: Path) -> str:
    """``a, b/, .c`` - the names in a folder (sub-folders with a slash), for the table."""
    if not folder.exists():
        return "(no folder)"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    return ", ".join(names) if names else "(empty)"


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory):
    """A small untrained 2-class classifier (32×32 in) saved like a trained one: ``visionkit classify -m PATH``."""
    import keras

    from visionkit.core.model import save_model
    from visionkit.core.registry import ModelSpec

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    path = tmp_path_factory.mktemp("classifier") / "tiny.keras"
    spec = ModelSpec(name="tiny", task="classify", builder="", input_size=(32, 32), resize=36)
    save_model(keras.Model(inputs, outputs), path, spec, ["cat", "dog"])
    return path
