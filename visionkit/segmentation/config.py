"""Segmentation defaults and the training configuration, defined once: the API's signatures and the CLI's
``--help`` read them from here (plain Python, so that ``visionkit segment --help`` imports no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass

from visionkit.core.training import TrainConfig

DEFAULT_MODEL = "unet_person"
DEFAULT_TILE = 512  # pixels (after resizing to the model's training scale); larger images are tiled
DEFAULT_OVERLAP = 64
DEFAULT_ALPHA = 0.5
SUBSETS = ("all", "train", "val")

ARCH_CLASSIC = "unet"
DEFAULT_ARCH = "unet-efficientnet_lite0"
DEFAULT_OUTPUT = "runs/segment"
HEADS = ("softmax", "sigmoid")
#: The optimisation defaults of segmentation training (the shared menu of visionkit.core.training, other values).
DEFAULT_TRAINING = TrainConfig(epochs=30, batch_size=8, learning_rate=1e-3, schedule="cosine")


@dataclass(frozen=True)
class SegmentConfig:
    """What to train on and which model (defaults defined once; the CLI reads them)."""

    arch: str = DEFAULT_ARCH  # "unet" or "unet-<backbone>"
    image_size: int = 256  # long side images are resized to (0: keep the native resolution)
    crop: int = 224  # square training crops
    depth: int = 4  # classic U-Net: poolings
    base_filters: int = 32  # classic U-Net: filters at full resolution
    freeze_encoder: bool = False
    head: str = "softmax"
    loss: str = "ce"  # ce | dice | focal | sums such as ce+dice
    class_weights: str = ""  # "" (none), "auto" (median frequency), or "w0,w1,..."
    focal_gamma: float = 2.0
    val_fraction: float = 0.2
    augment: bool = True
