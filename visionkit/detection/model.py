"""A YOLOv2-style detector: any registry backbone, a passthrough from stride 16, and an S x S x B x (5 + C) head.

Redmon & Farhadi, "YOLO9000: Better, Faster, Stronger" (CVPR 2017), §2: anchor boxes from k-means, direct
location prediction (``sigmoid`` offsets inside the grid cell, ``exp`` scaling of the anchor's width and height),
and a passthrough layer that brings stride-16 features to the stride-32 grid by space-to-depth ("reorg").

The model takes RGB pixels in [0, 255] (the backbone normalises inside itself) and returns the raw head output
``(batch, S, S, B, 5 + C)`` = ``(t_x, t_y, t_w, t_h, t_o, class logits…)``; :mod:`visionkit.detection.decode`
turns it into boxes. Layer names are fixed: ``backbone`` (a nested model, frozen in the first training phase),
``head_*``.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
from keras import layers, ops

from visionkit.core.errors import UsageError

STRIDE = 32
DEFAULT_BACKBONE = "efficientnet_lite0"
#: Prior probability of "an object here" the objectness bias starts at (Lin et al. 2017, focal loss §4.1).
OBJECTNESS_PRIOR = 0.01
HEAD_FILTERS = 128


@keras.saving.register_keras_serializable(package="visionkit")
class SpaceToDepth(keras.layers.Layer):
    """Move each ``block x block`` patch into channels: (H, W, C) -> (H/b, W/b, b*b*C) (YOLOv2's reorg layer)."""

    def __init__(self, block: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.block = int(block)

    def call(self, inputs):
        b = self.block
        shape = ops.shape(inputs)
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        x = ops.reshape(inputs, (shape[0], height // b, b, width // b, b, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (shape[0], height // b, width // b, b * b * channels))

    def compute_output_shape(self, input_shape):
        b = self.block
        return (input_shape[0], input_shape[1] // b, input_shape[2] // b, input_shape[3] * b * b)

    def get_config(self):
        return {**super().get_config(), "block": self.block}


def _strides_available(backbone: keras.Model) -> set:
    height = backbone.input_shape[1]
    shapes = (getattr(getattr(layer, "output", None), "shape", None) for layer in backbone.layers)
    return {height // s[1] for s in shapes if s is not None and len(s) == 4 and s[1] and height % s[1] == 0}


def feature_layers(backbone: keras.Model, strides: Sequence[int]) -> dict[int, str]:
    """For each stride, the name of the last layer whose output is ``input / stride`` on a side.

    Works for any convolutional backbone (for EfficientNet-Lite it picks ``block6a_expand_activation`` at 16 and
    ``top_activation`` at 32, the same as its ``FEATURE_LAYERS`` table).
    """
    height = backbone.input_shape[1]
    found: dict[int, str] = {}
    for layer in backbone.layers:
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if shape is None or len(shape) != 4 or shape[1] is None:
            continue
        for stride in strides:
            if shape[1] * stride == height:
                found[stride] = layer.name
    missing = [s for s in strides if s not in found]
    if missing:
        raise UsageError(f"backbone {backbone.name!r} has no feature map at stride {missing} for input {height}")
    return found


def _conv_bn(x, filters: int, kernel: int, name: str):
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.LeakyReLU(0.1, name=f"{name}_leaky")(x)


def check_input_size(input_size: Sequence[int]) -> tuple[int, int]:
    size = tuple(int(s) for s in input_size)
    if len(size) != 2 or any(s < STRIDE or s % STRIDE for s in size):
        raise UsageError(f"input size must be two multiples of {STRIDE} (e.g. 320 320), received {tuple(input_size)}")
    return size


def yolo_v2(
    num_classes: int,
    anchors: Sequence[Sequence[float]],
    input_shape: Sequence[int] = (320, 320, 3),
    backbone: str | keras.Model = DEFAULT_BACKBONE,
    backbone_weights: str | None = "default",
    passthrough: bool | None = None,
    head_filters: int = HEAD_FILTERS,
    name: str = "yolo_v2",
) -> keras.Model:
    """Build the detector. ``anchors``: (B, 2) widths and heights as fractions of the input side.

    ``passthrough`` (default: when the backbone has a stride-16 map) adds YOLOv2's reorganised stride-16 features.
    ``backbone`` is a registry name (loaded with :func:`visionkit.core.model.load_backbone`, pretrained unless
    ``backbone_weights`` is None or ``"none"``, e.g. when trained weights are loaded next) or a Keras model taking
    pixels in [0, 255].
    """
    anchors = [tuple(float(v) for v in a) for a in anchors]
    if num_classes < 1:
        raise UsageError(f"num_classes must be at least 1, received {num_classes}")
    if not anchors or any(len(a) != 2 or min(a) <= 0 for a in anchors):
        raise UsageError(f"anchors must be positive (width, height) pairs, received {anchors}")
    height, width = check_input_size(input_shape[:2])
    if isinstance(backbone, str):
        from visionkit.core.model import load_backbone

        weights = None if backbone_weights in (None, "none") else backbone_weights
        backbone = load_backbone(backbone, (height, width, 3), weights=weights)
    if passthrough is None:  # auto: use the stride-16 passthrough when the backbone has such a feature map
        passthrough = 16 in _strides_available(backbone)
    strides = (16, 32) if passthrough else (32,)
    names = feature_layers(backbone, strides)
    features = keras.Model(backbone.inputs, [backbone.get_layer(names[s]).output for s in strides], name="backbone")

    inputs = keras.Input((height, width, 3), name="pixels")
    maps = features(inputs)
    maps = maps if isinstance(maps, (list, tuple)) else [maps]
    x = _conv_bn(maps[-1], head_filters, 1, "head_reduce")
    x = _conv_bn(x, head_filters, 3, "head_mix")
    if passthrough:
        fine = _conv_bn(maps[0], 64, 1, "head_passthrough")
        x = layers.Concatenate(name="head_concat")([SpaceToDepth(2, name="head_reorg")(fine), x])
    x = _conv_bn(x, head_filters, 3, "head_fuse")
    count, per_anchor = len(anchors), 5 + num_classes
    bias = [0.0] * (count * per_anchor)
    for a in range(count):
        bias[a * per_anchor + 4] = math.log(OBJECTNESS_PRIOR / (1 - OBJECTNESS_PRIOR))
    x = layers.Conv2D(count * per_anchor, 1, name="head_output", dtype="float32",
                      bias_initializer=keras.initializers.Constant(bias))(x)
    outputs = layers.Reshape((height // STRIDE, width // STRIDE, count, per_anchor), name="head_grid")(x)
    return keras.Model(inputs, outputs, name=name)


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze or unfreeze the backbone; its BatchNormalization layers stay frozen (small detection batches)."""
    backbone = model.get_layer("backbone")
    backbone.trainable = trainable
    if trainable:
        for layer in backbone.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False
