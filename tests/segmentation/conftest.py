"""A per-pixel "red" segmenter whose answers are known exactly, saved like a trained one, and images for it."""

from __future__ import annotations

import numpy as np
import pytest


def red_model(channels: int = 2):
    """A per-pixel model: P(class 1) = sigmoid((red - 128) / 4); any extra classes get zero logits."""
    import keras

    inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(channels, 1, activation="softmax")
    outputs = conv(inputs)
    kernel = np.zeros((1, 1, 3, channels), "float32")
    kernel[0, 0, 0, 1] = 0.25
    bias = np.zeros(channels, "float32")
    bias[1] = -32.0
    conv.set_weights([kernel, bias])
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def red_path(tmp_path_factory):
    from visionkit.core.registry import ModelSpec
    from visionkit.core.model import save_model

    path = tmp_path_factory.mktemp("model") / "red.keras"
    spec = ModelSpec(name="red", task="segment", builder="tests")
    save_model(red_model(), path, spec, ["background", "red"], {"task": "segment", "long_side": None, "multiple": 4,
                                                                "val_stems": ["b"]})
    return str(path)


def red_image(height, width, box):
    image = np.full((height, width, 3), 60, np.uint8)
    top, left, bottom, right = box
    image[top:bottom, left:right, 0] = 250
    return image
