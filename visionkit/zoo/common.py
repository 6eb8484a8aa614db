"""Pieces shared by the classic-architecture builders: argument checks, the pixel input, padding, heads.

Every zoo model takes RGB (or grayscale) pixels in [0, 255] and starts with ``Rescaling(1/255)``
(layer ``rescale``), so a saved ``.keras`` file is self-contained. Rescaling has no parameters, so
the parameter counts pinned in the tests are those of the published networks.
"""

from __future__ import annotations

import operator
from typing import Sequence

import keras
from keras import layers

from visionkit.core.errors import UsageError
from visionkit.zoo.cost import same_padding

PIXEL_SCALE = 1.0 / 255.0


def check_arguments(model: str, input_shape: Sequence[int] | None, num_classes: int, include_top: bool,
                    min_size: int, default_shape: Sequence[int]) -> tuple[int, int, int]:
    """The validated (H, W, C) input shape; UsageError naming what was received otherwise."""
    try:
        shape = tuple(operator.index(v) for v in (default_shape if input_shape is None else input_shape))
    except TypeError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UsageError(f"{model}: input_shape must be (height, width, channels) of positive integers; "
                         f"received input_shape={input_shape!r}")
    if min(shape[:2]) < min_size:
        raise UsageError(f"{model}: the input must be at least {min_size}x{min_size} pixels; "
                         f"received input_shape={shape!r}")
    if include_top and not _positive_integer(num_classes):
        raise UsageError(f"{model}: num_classes must be a positive integer; received num_classes={num_classes!r}")
    return shape  # type: ignore[return-value]


def _positive_integer(value) -> bool:
    try:
        return operator.index(value) >= 1
    except TypeError:
        return False


def check_positive(model: str, **values: float) -> None:
    """Width multipliers, dropout rates and the like: UsageError unless in range."""
    for key, value in values.items():
        low_ok = value > 0 if key != "dropout" else value >= 0
        if not isinstance(value, (int, float)) or not low_ok or (key == "dropout" and value >= 1):
            allowed = "in [0, 1)" if key == "dropout" else "greater than 0"
            raise UsageError(f"{model}: {key} must be a number {allowed}; received {key}={value!r}")


def pixel_input(shape: Sequence[int]):
    """``(inputs, x)``: the model input (pixels in [0, 255]) and the same values scaled to [0, 1]."""
    inputs = keras.Input(shape=tuple(shape), name="pixels")
    return inputs, layers.Rescaling(PIXEL_SCALE, name="rescale")(inputs)


def pad_for_stride(x, kernel: int, stride: int, name: str):
    """Explicit zero padding equal to TensorFlow's "same" for a strided ``kernel`` (then use a "valid" conv).

    The amounts come from :func:`visionkit.zoo.cost.same_padding`, so a padded "valid" conv gives
    ⌈n/s⌉ outputs as a "same" one would, with the padding visible as its own layer (as in Keras
    Applications' MobileNets and ResNet).
    """
    rows = same_padding(int(x.shape[1]), kernel, stride)
    cols = same_padding(int(x.shape[2]), kernel, stride)
    return layers.ZeroPadding2D((rows, cols), name=name)(x)


def classifier(x, num_classes: int, activation: str | None, name: str = "predictions"):
    """The final Dense layer (softmax by default; ``None`` for logits)."""
    return layers.Dense(num_classes, activation=activation, name=name)(x)
