"""Tiny classifiers whose evidence is known by construction: a 1x1 convolution that responds to red (unit 0) or green
(unit 1) pixels, global average pooling, and a softmax layer that reads unit 0 as class "red" and unit 1 as "green"."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

SIZE = 32


def colour_model(nested: bool = False):
    """pixels [0, 255] -> 1x1 conv (red - others, green - others) -> ReLU -> 3x3 conv (identity) -> GAP -> softmax.

    ``nested``: the convolutions form a backbone model inside the classifier and the head is a Sequential, as in a
    ``visionkit finetune`` model.
    """
    import keras

    pick = np.zeros((1, 1, 3, 2), np.float32)
    pick[0, 0, :, 0] = [1.0, -1.0, -1.0]
    pick[0, 0, :, 1] = [-1.0, 1.0, -1.0]
    identity = np.zeros((3, 3, 2, 2), np.float32)
    identity[1, 1] = np.eye(2)
    colour = keras.layers.Conv2D(2, 1, name="colour")
    smooth = keras.layers.Conv2D(2, 3, padding="same", name="smooth")
    dense = keras.layers.Dense(2, activation="softmax", name="classes")
    inputs = keras.Input((SIZE, SIZE, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    x = smooth(keras.layers.ReLU(name="colour_relu")(colour(x)))
    if not nested:
        model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D(name="pool")(x)), name="colours")
    else:
        backbone = keras.Model(inputs, x, name="backbone")
        outer = keras.Input((SIZE, SIZE, 3), name="pixels")
        pooled = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(outer, training=False))
        head = keras.Sequential([keras.layers.Dropout(0.1, name="head_dropout"), dense], name="head")
        model = keras.Model(outer, head(pooled), name="finetuned")
    colour.set_weights([pick, np.zeros(2, np.float32)])
    smooth.set_weights([identity, np.zeros(2, np.float32)])
    dense.set_weights([np.eye(2, dtype=np.float32) * 4.0, np.zeros(2, np.float32)])
    return model


def save_colour_model(path, nested: bool = False) -> str:
    from visionkit.core.model import save_model
    from visionkit.core.registry import ModelSpec

    spec = ModelSpec(name="colours", task="classify", builder="", input_size=(SIZE, SIZE), interpolation="bilinear")
    save_model(colour_model(nested), path, spec, ["red", "green"])
    return str(path)


def square_image(width: int, height: int, box, colour) -> np.ndarray:
    """A grey image with a coloured rectangle ``box`` = (x1, y1, x2, y2)."""
    pixels = np.full((height, width, 3), 100, np.uint8)
    x1, y1, x2, y2 = box
    pixels[y1:y2, x1:x2] = colour
    return pixels


@pytest.fixture(scope="module")
def colour_files(tmp_path_factory):
    """The flat and the nested model saved as .keras files (with sidecars)."""
    folder = tmp_path_factory.mktemp("colour-models")
    return {"flat": save_colour_model(folder / "flat.keras"), "nested": save_colour_model(folder / "nested.keras", True)}


@pytest.fixture
def red_photo(tmp_path):
    """An 80 x 48 photo with a red 16 x 12 patch at x 8-24, y 4-16 (so resizing to 32 x 32 squeezes it)."""
    path = tmp_path / "red.png"
    Image.fromarray(square_image(80, 48, (8, 4, 24, 16), (230, 20, 20))).save(path)
    return path
