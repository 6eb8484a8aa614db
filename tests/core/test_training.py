"""visionkit.core.training: schedules follow the course's formulas, run folders, history, and a real kill -9 + resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from visionkit.core import callbacks as history_callbacks
from visionkit.core import training
from visionkit.core.errors import UsageError

REPO = Path(__file__).resolve().parents[2]


def _rate(schedule, step):
    return float(schedule(step)) if callable(schedule) else float(schedule)


@pytest.mark.parametrize("epoch", [0, 1, 2, 7])
def test_schedules_match_the_course_formulas(epoch):
    steps = 10
    step = epoch * steps + 3  # somewhere inside the epoch: the rate changes once per epoch
    alpha0 = 0.2
    inverse = training.make_schedule("inverse-time", alpha0, steps, 10, decay=1.0)
    assert _rate(inverse, step) == pytest.approx(alpha0 / (1 + 1.0 * epoch), rel=1e-5)
    exponential = training.make_schedule("exponential", alpha0, steps, 10, decay_rate=0.95)
    assert _rate(exponential, step) == pytest.approx(alpha0 * 0.95 ** epoch, rel=1e-5)
    stepped = training.make_schedule("step", alpha0, steps, 10, decay_rate=0.5, step_epochs=3)
    assert _rate(stepped, step) == pytest.approx(alpha0 * 0.5 ** (epoch // 3), rel=1e-5)
    assert _rate(training.make_schedule("constant", alpha0, steps, 10), step) == alpha0


def test_cosine_schedule_ends_at_the_floor():
    cosine = training.make_schedule("cosine", 1.0, 10, 4, min_lr_fraction=0.1)
    assert _rate(cosine, 0) == pytest.approx(1.0)
    assert _rate(cosine, 20) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 0.5)) / 2, rel=1e-5)
    assert _rate(cosine, 40) == pytest.approx(0.1, rel=1e-5)


def test_optimizers_carry_their_hyperparameters():
    sgd = training.make_optimizer("sgd", 0.05, momentum=0.8)
    adam = training.make_optimizer("adam", 0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-5)
    rms = training.make_optimizer("rmsprop", 0.01, rho=0.7)
    assert (sgd.__class__.__name__, float(sgd.momentum)) == ("SGD", 0.8)
    assert (adam.beta_1, adam.beta_2, adam.epsilon) == (0.8, 0.99, 1e-5)
    assert rms.rho == 0.7
    with pytest.raises(UsageError, match="lamb"):
        training.make_optimizer("lamb")


def test_check_config_names_the_bad_value():
    with pytest.raises(UsageError, match="'cyclic'"):
        training.check_config(training.TrainConfig(schedule="cyclic"))
    with pytest.raises(UsageError, match="1.5"):
        training.check_config(training.TrainConfig(beta_1=1.5))
    training.check_config(training.TrainConfig())


def test_run_dir_never_overwrites_and_resume_needs_a_run(tmp_path):
    first = training.prepare_run_dir(tmp_path / "run")
    (first / "model.keras").write_text("x")
    second = training.prepare_run_dir(tmp_path / "run")
    assert second.name == "run-2" and first.name == "run"
    with pytest.raises(UsageError, match="nothing to resume"):
        training.prepare_run_dir(tmp_path / "run-2", resume=True)


def test_precision_policy_is_restored():
    import keras

    with training.precision_policy(True) as policy:
        assert keras.mixed_precision.global_policy().name == policy != "float32"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_default_strategy_has_one_replica():
    assert training.make_strategy("none").num_replicas_in_sync == 1
    with pytest.raises(UsageError):
        training.make_strategy("parameter-server")


def train_tiny(run: str, emit) -> None:
    """Train a tiny model for 6 epochs of 8 batches with resumable checkpoints; ``emit`` gets progress events."""
    import keras

    training.seed_everything(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(training.make_optimizer("sgd", training.make_schedule("inverse-time", 0.1, 8, 6, decay=0.5)),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])

    class Log(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            emit({"start": int(getattr(model, "_initial_epoch", 0) or 0),
                  "kernel_sum": float(model.layers[0].get_weights()[0].sum()),
                  "iterations": int(model.optimizer.iterations.numpy())})

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            emit({"epoch": self.epoch, "batch": batch})
            time.sleep(0.03)

        def on_epoch_end(self, epoch, logs=None):
            emit({"saved": epoch, "kernel_sum": float(model.layers[0].get_weights()[0].sum())})

    callbacks = history_callbacks.training_callbacks(run, plot=False, extra=[Log()])
    model.fit(x, y, batch_size=8, epochs=6, callbacks=callbacks, verbose=0, validation_data=(x, y))
    emit({"done": True})


_SCRIPT = ("import sys, json; from tests.core.test_training import train_tiny; "
           "train_tiny(sys.argv[1], lambda event: print(json.dumps(event), flush=True))")


def _run_killed(run_dir: Path, kill_at: tuple[int, int]):
    """Run ``train_tiny`` in a subprocess and SIGKILL it when it reports ``kill_at`` = (epoch, batch)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": "",
           "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(run_dir)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    events = []
    deadline = time.monotonic() + 180
    for line in process.stdout:
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        events.append(event)
        if (event.get("epoch"), event.get("batch")) == kill_at:
            os.kill(process.pid, signal.SIGKILL)  # a real kill -9, in the middle of an epoch
            break
        assert time.monotonic() < deadline, "training script hung"
    process.wait(timeout=60)
    return process.returncode, events


@pytest.mark.slow  # trains a model
def test_killed_mid_epoch_resumes_from_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    code, events = _run_killed(run, kill_at=(3, 4))  # fourth epoch, fifth of eight batches
    assert code == -signal.SIGKILL
    saved = {e["saved"]: e["kernel_sum"] for e in events if "saved" in e}
    assert sorted(saved) == [0, 1, 2]
    assert training.resume_epoch(run) == 3
    assert [row["epoch"] for row in history_callbacks.read_history(run / training.HISTORY_FILE)] == [0, 1, 2]

    events = []
    train_tiny(str(run), events.append)  # the same training, started again: it resumes (in this process)
    assert events[-1] == {"done": True}
    start = events[0]
    assert start["start"] == 3, "resumed run restarted from scratch"
    assert start["kernel_sum"] == pytest.approx(saved[2], abs=1e-6), "weights are not those of the last checkpoint"
    assert start["iterations"] == 3 * 8, "optimizer state (and so the LR schedule) was not restored"
    trained_epochs = sorted({e["epoch"] for e in events if "batch" in e})
    assert trained_epochs == [3, 4, 5]
    history = history_callbacks.read_history(run / training.HISTORY_FILE)
    assert [row["epoch"] for row in history] == list(range(6))
    assert history[4]["lr"] == pytest.approx(0.1 / (1 + 0.5 * 4), rel=1e-5)
    assert not (run / training.BACKUP_DIR).exists(), "checkpoint is removed once training completes"
    assert np.isfinite([row["loss"] for row in history]).all()
