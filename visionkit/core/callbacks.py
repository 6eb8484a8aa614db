"""Training callbacks every trainer shares: a resumable checkpoint each epoch, ``history.csv`` + ``curves.png``,
early stopping, one progress line per epoch; and :func:`fit`, which honours a restored checkpoint.

Checkpoints are Keras' ``BackupAndRestore`` (weights + optimizer state + epoch, written at every epoch end,
two generations kept so that a kill during the write still leaves one good copy).
"""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path

from visionkit.core.training import (BACKUP_DIR, CURVES_FILE, HISTORY_FILE, NOT_PLOTTED, PLOT_EVERY_S,
                                     current_learning_rate)
from visionkit.core.writers import atomic_path


def read_history(path: str | os.PathLike) -> list[dict]:
    """The rows of a ``history.csv`` (numbers as floats, ``epoch`` as int); [] when absent."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows.append({k: (int(v) if k == "epoch" else _number(v)) for k, v in row.items()})
    return rows


def _number(text: str):
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def history_columns(rows: list[dict]) -> dict[str, list]:
    """Rows -> {column: values} (the shape :func:`visionkit.core.viz.plot_curves` takes)."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    return {k: [row.get(k, math.nan) for row in rows] for k in keys}


def _write_history(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys, restval="")
            writer.writeheader()
            writer.writerows(rows)


def _make_history_callback():
    import keras

    class HistoryFile(keras.callbacks.Callback):
        """Keeps ``history.csv`` (one row per epoch, rewritten atomically) and ``curves.png`` up to date.

        On resume, rows from epochs at or after the restored checkpoint (work that was lost) are dropped.
        """

        def __init__(self, run_dir: Path, phase: str = "", plot: bool = True, title: str = "training",
                      initial_epoch: int = 0):
            super().__init__()
            self.initial_epoch = int(initial_epoch)
            self.path = Path(run_dir) / HISTORY_FILE
            self.curves = Path(run_dir) / CURVES_FILE
            self.phase = phase
            self.plot = plot
            self.title = title
            self.rows: list[dict] = []
            self.plotted = time.monotonic()

        def on_train_begin(self, logs=None):
            start = int(getattr(self.model, "_initial_epoch", None) or self.initial_epoch)
            self.rows = [row for row in read_history(self.path) if row["epoch"] < start]

        def on_epoch_begin(self, epoch, logs=None):
            optimizer = getattr(self.model, "optimizer", None)
            self.rate = current_learning_rate(optimizer) if optimizer is not None else None
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": int(epoch)}
            if self.phase:
                row["phase"] = self.phase
            row.update({k: float(v) for k, v in (logs or {}).items() if k not in ("learning_rate", "lr")})
            if self.rate is not None:
                row["lr"] = self.rate  # the rate used during this epoch
            row["seconds"] = round(time.monotonic() - self.started, 3)  # wall time of the epoch, validation included
            self.rows = [r for r in self.rows if r["epoch"] != epoch] + [row]
            _write_history(self.path, self.rows)
            if self.plot and time.monotonic() - self.plotted > PLOT_EVERY_S:
                self._plot()

        def on_train_end(self, logs=None):
            if self.plot and self.rows:
                self._plot()

        def _plot(self):
            from visionkit.core.viz import plot_curves

            columns = history_columns(self.rows)
            numeric = {k: v for k, v in columns.items() if k not in NOT_PLOTTED}
            if numeric:
                plot_curves(numeric, self.curves, title=self.title)
            self.plotted = time.monotonic()

    return HistoryFile


def _make_progress_callback():
    import keras

    class EpochLine(keras.callbacks.Callback):
        """One line per epoch on stderr (used instead of Keras' bar when output is not a terminal)."""

        def on_epoch_end(self, epoch, logs=None):
            import sys

            shown = "  ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items() if k != "learning_rate")
            print(f"epoch {epoch + 1}/{self.params.get('epochs')}  {shown}", file=sys.stderr, flush=True)

    return EpochLine


def training_callbacks(run_dir: str | os.PathLike, patience: int | None = None, monitor: str = "val_loss",
                       phase: str = "", backup: str = BACKUP_DIR, plot: bool = True, epoch_lines: bool = False,
                       initial_epoch: int = 0, extra: list | None = None) -> list:
    """Checkpoint-every-epoch (resumable), history.csv + curves.png, optional early stopping.

    The checkpoint callback comes first so that on resume it restores the weights, the optimizer
    state and the epoch before anything else runs. ``epoch_lines`` prints one line per epoch on stderr
    (pass it when Keras' own progress bar is off, i.e. ``verbose=0``, and the user did not ask for quiet).
    A second training phase in the same run uses its own ``backup`` folder, ``phase`` label and the
    ``initial_epoch`` it starts at, so history rows of earlier phases are kept. Train with :func:`fit`.
    """
    import keras

    run_dir = Path(run_dir)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / backup), save_freq="epoch", double_checkpoint=True),
        _make_history_callback()(run_dir, phase=phase, plot=plot, initial_epoch=initial_epoch),
    ]
    if patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=int(patience),
                                                       restore_best_weights=True, verbose=0))
    if epoch_lines:
        callbacks.append(_make_progress_callback()())
    return callbacks + list(extra or [])


def fit(model, data, epochs: int, callbacks: list, validation_data=None, initial_epoch: int = 0,
        class_weight: dict | None = None, verbose: int = 0):
    """``model.fit`` that honours a checkpoint restored by ``BackupAndRestore`` and nothing else.

    Keras keeps the restored epoch on the model (``_initial_epoch``) after ``fit`` returns, which would make a
    later phase on the same model start at the wrong epoch; it is cleared before each call.
    """
    import tensorflow as tf

    model._initial_epoch = None
    if initial_epoch >= epochs:
        return None
    return model.fit(data, epochs=epochs, initial_epoch=initial_epoch, validation_data=validation_data,
                     callbacks=callbacks, class_weight=class_weight, verbose=verbose,
                     shuffle=not isinstance(data, tf.data.Dataset))  # a tf.data pipeline shuffles itself


__all__ = ["read_history", "history_columns", "training_callbacks", "fit"]
