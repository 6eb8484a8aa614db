"""Shared training pieces: the optimisation menu, optimizers, learning-rate schedules, seeds, precision, strategies,
run folders.

Every trainer in visionkit (finetune, detection, segmentation, faces) builds its optimizer with
:func:`make_optimizer`, its schedule with :func:`make_schedule`, its run folder with :func:`prepare_run_dir`
and its callbacks with :func:`visionkit.core.callbacks.training_callbacks`, so that ``--optimizer``,
``--schedule``, ``--resume``, ``history.csv`` and ``curves.png`` mean the same thing everywhere.

Schedules follow the course's per-epoch formulas (Ng, *Improving Deep Neural Networks*, week 2,
"Learning rate decay"): ``inverse-time`` α0 / (1 + decay·epoch), ``exponential`` α0·rate^epoch,
``step`` α0·rate^floor(epoch / step_epochs); ``cosine`` is Loshchilov & Hutter (2017) without restarts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from visionkit.core.errors import UsageError

log = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "rmsprop", "adam")
SCHEDULES = ("constant", "inverse-time", "exponential", "step", "cosine")
DISTRIBUTE = ("none", "mirrored", "multi-worker")

HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
BACKUP_DIR = "backup"
CONFIG_FILE = "config.json"
NOT_PLOTTED = ("epoch", "phase", "lr", "seconds")
PLOT_EVERY_S = 30.0  # curves.png is redrawn at most this often during training, and always at the end


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation menu of the course, with its defaults defined once (CLIs read them from here)."""

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9  # sgd (and rmsprop's optional momentum is left at 0)
    beta_1: float = 0.9  # adam
    beta_2: float = 0.999  # adam
    epsilon: float = 1e-7  # adam and rmsprop
    rho: float = 0.9  # rmsprop: decay of the squared-gradient average (β in the course)
    schedule: str = "constant"
    decay: float = 1.0  # inverse-time: α0 / (1 + decay·epoch)
    decay_rate: float = 0.95  # exponential / step: α0 · decay_rate^(…)
    step_epochs: int = 5  # step: epochs between drops
    min_lr_fraction: float = 0.0  # cosine: final rate as a fraction of α0
    patience: int | None = None  # early stopping on val_loss (None: off)
    seed: int = 0
    deterministic: bool = False
    mixed_precision: bool = False
    distribute: str = "none"

    def to_dict(self) -> dict:
        return asdict(self)


def check_config(config: TrainConfig) -> None:
    """Raise UsageError for values that cannot work, naming the received value."""
    if config.optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if config.schedule not in SCHEDULES:
        raise UsageError(f"unknown schedule {config.schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if config.distribute not in DISTRIBUTE:
        raise UsageError(f"unknown distribute {config.distribute!r}; choose one of {', '.join(DISTRIBUTE)}")
    if config.epochs < 1 or config.batch_size < 1:
        raise UsageError(f"epochs and batch size must be at least 1, received {config.epochs} and {config.batch_size}")
    if not config.learning_rate > 0:
        raise UsageError(f"learning rate must be positive, received {config.learning_rate}")
    if not (0 <= config.beta_1 < 1 and 0 <= config.beta_2 < 1 and 0 <= config.momentum < 1 and 0 <= config.rho < 1):
        raise UsageError("beta_1, beta_2, momentum and rho must lie in [0, 1), received "
                         f"{config.beta_1}, {config.beta_2}, {config.momentum}, {config.rho}")
    if config.step_epochs < 1:
        raise UsageError(f"step_epochs must be at least 1, received {config.step_epochs}")


# --- optimizers and schedules -------------------------------------------------------------------------------


def make_schedule(name: str, learning_rate: float, steps_per_epoch: int, epochs: int, decay: float = 1.0,
                  decay_rate: float = 0.95, step_epochs: int = 5, min_lr_fraction: float = 0.0):
    """A Keras learning-rate schedule (a float for ``constant``) that changes once per epoch of ``steps_per_epoch``.

    - ``inverse-time``: α0 / (1 + decay·epoch)
    - ``exponential``: α0 · decay_rate^epoch
    - ``step``: α0 · decay_rate^floor(epoch / step_epochs) (fixed-interval drops)
    - ``cosine``: α0 · (f + (1 - f)·(1 + cos(π·t/T))/2) over all steps, f = ``min_lr_fraction``
    """
    import keras

    schedules = keras.optimizers.schedules
    steps_per_epoch = max(1, int(steps_per_epoch))
    if name == "constant":
        return float(learning_rate)
    if name == "inverse-time":
        return schedules.InverseTimeDecay(learning_rate, steps_per_epoch, decay, staircase=True)
    if name == "exponential":
        return schedules.ExponentialDecay(learning_rate, steps_per_epoch, decay_rate, staircase=True)
    if name == "step":
        return schedules.ExponentialDecay(learning_rate, steps_per_epoch * step_epochs, decay_rate, staircase=True)
    if name == "cosine":
        return schedules.CosineDecay(learning_rate, max(1, steps_per_epoch * epochs), alpha=min_lr_fraction)
    raise UsageError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")


def make_optimizer(name: str, learning_rate=1e-3, momentum: float = 0.9, beta_1: float = 0.9,
                   beta_2: float = 0.999, epsilon: float = 1e-7, rho: float = 0.9):
    """SGD with momentum, RMSprop or Adam; ``learning_rate`` may be a float or a schedule."""
    import keras

    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, rho=rho, epsilon=epsilon)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    raise UsageError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def optimizer_from_config(config: TrainConfig, steps_per_epoch: int, learning_rate: float | None = None,
                          epochs: int | None = None):
    """The optimizer and schedule a TrainConfig describes (``learning_rate``/``epochs`` override it, e.g. phase 2)."""
    rate = config.learning_rate if learning_rate is None else learning_rate
    schedule = make_schedule(config.schedule, rate, steps_per_epoch, epochs or config.epochs, config.decay,
                             config.decay_rate, config.step_epochs, config.min_lr_fraction)
    return make_optimizer(config.optimizer, schedule, config.momentum, config.beta_1, config.beta_2,
                          config.epsilon, config.rho)


def current_learning_rate(optimizer) -> float:
    """The rate the optimizer uses at its current step (schedules evaluated)."""
    import keras

    value = optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(value))


# --- seeds, precision, strategies ----------------------------------------------------------------------------


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow; with ``deterministic`` also ask TF for deterministic kernels (slower).

    TensorFlow cannot switch op determinism off again in the same process.
    """
    import keras

    keras.utils.set_random_seed(int(seed))
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Iterator[str]:
    """Mixed precision inside the block (float16 on a GPU, bfloat16 on CPU), float32 again after it.

    Models built inside compute in the low precision and keep float32 variables; give the final layer
    ``dtype="float32"`` so that the softmax and the loss stay in float32 (Micikevicius et al. 2018).
    """
    import keras

    previous = keras.mixed_precision.global_policy().name
    if not mixed:
        yield previous
        return
    import tensorflow as tf

    policy = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield policy
    finally:
        keras.mixed_precision.set_global_policy(previous)


def make_strategy(name: str = "none"):
    """The ``tf.distribute`` strategy for ``--distribute``: the default one, Mirrored (all local GPUs), or
    MultiWorkerMirrored (the cluster described by the ``TF_CONFIG`` environment variable).

    Build and compile the model inside ``strategy.scope()``; the same command then runs on one machine or many.
    """
    import tensorflow as tf

    if name in ("none", "", None):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            log.warning("--distribute multi-worker without TF_CONFIG: running as a single worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UsageError(f"unknown distribute {name!r}; choose one of {', '.join(DISTRIBUTE)}")


# --- run folders ---------------------------------------------------------------------------------------------


def prepare_run_dir(path: str | os.PathLike, resume: bool = False) -> Path:
    """The folder for one run. A new run never overwrites: if ``path`` holds files, ``path-2``, ``path-3``… is used.

    With ``resume`` the folder must exist and hold a checkpoint or a config from an earlier run.
    """
    path = Path(path)
    if resume:
        if not path.is_dir() or not ((path / BACKUP_DIR).is_dir() or (path / CONFIG_FILE).is_file()):
            raise UsageError(f"{path}: nothing to resume (no {BACKUP_DIR}/ or {CONFIG_FILE} there); "
                             "start a new run without --resume")
        return path
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        stem = re.sub(r"-\d+$", "", path.name)
        number = 2
        while (path.parent / f"{stem}-{number}").exists():
            number += 1
        path = path.parent / f"{stem}-{number}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resume_epoch(run_dir: str | os.PathLike, backup: str = BACKUP_DIR) -> int:
    """The epoch a resumed run starts at (0 when there is no checkpoint)."""
    metadata = Path(run_dir) / backup / "training_metadata.json"
    for candidate in (metadata, Path(f"{metadata}.bkp")):
        try:
            return int(json.loads(candidate.read_text())["epoch"])
        except (OSError, ValueError, KeyError):
            continue
    return 0


__all__ = [
    "TrainConfig", "check_config", "make_schedule", "make_optimizer", "optimizer_from_config",
    "current_learning_rate", "seed_everything", "precision_policy", "make_strategy", "prepare_run_dir",
    "resume_epoch", "OPTIMIZERS", "SCHEDULES", "DISTRIBUTE", "HISTORY_FILE", "CURVES_FILE", "BACKUP_DIR",
    "CONFIG_FILE",
]
