"""Classifier-training defaults and the finetune options, defined once: the API's signatures and the CLI's
``--help`` read them from here (plain Python, so that ``visionkit finetune --help`` imports no TensorFlow). The
optimisation menu shared by every trainer is :class:`visionkit.core.training.TrainConfig`."""

from __future__ import annotations

import dataclasses

DEFAULT_BASE = "efficientnet_lite0"
DEFAULT_OUTPUT = "runs/finetune"
DEFAULT_FREEZE = "all"
DEFAULT_HEAD = "softmax"
DEFAULT_DROPOUT = 0.2
DEFAULT_L2 = 0.0
DEFAULT_INIT = "he"
DEFAULT_DEV = 0.15
DEFAULT_TEST = 0.15
DEFAULT_TRAIN_DEV = 0.0
DEFAULT_CLASS_WEIGHT = "balanced"
DEFAULT_FINE_TUNE_EPOCHS = 0
DEFAULT_UNFREEZE = 20  # layers with weights made trainable in phase two
DEFAULT_FINE_TUNE_LR = 1e-5
DEFAULT_TOP_K = 5
CLASS_WEIGHTS = ("balanced", "none")
HEADS = ("softmax", "logreg", "svm")
INITS = ("he", "glorot")
EVAL_BATCH_SIZE = 32
EXPORT_FORMATS = ("saved_model", "tflite", "onnx")
DEFAULT_EXPORT_FORMAT = "saved_model"
WEIGHTS = ("pretrained", "imagenet", "none")
FEATURES_DIR = "features"
STATE_FILE = "state.json"
PHASE1_WEIGHTS = "phase1.weights.h5"


@dataclasses.dataclass(frozen=True)
class FinetuneOptions:
    """Everything but the optimisation menu (that is :class:`visionkit.core.training.TrainConfig`)."""

    data: str
    base: str = DEFAULT_BASE
    weights: str = "pretrained"
    freeze: str = DEFAULT_FREEZE
    head: str = DEFAULT_HEAD
    cache_features: bool = False
    dropout: float = DEFAULT_DROPOUT
    l2: float = DEFAULT_L2
    init: str = DEFAULT_INIT
    augment: tuple = ()
    input_size: tuple | None = None
    dev_fraction: float = DEFAULT_DEV
    test_fraction: float = DEFAULT_TEST
    train_dev_fraction: float = DEFAULT_TRAIN_DEV
    class_weight: str = DEFAULT_CLASS_WEIGHT
    fine_tune_epochs: int = DEFAULT_FINE_TUNE_EPOCHS
    unfreeze: int = DEFAULT_UNFREEZE
    fine_tune_lr: float = DEFAULT_FINE_TUNE_LR
    human_error: float | None = None
    top_k: int = DEFAULT_TOP_K
