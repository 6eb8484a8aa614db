"""The custom Keras layers darknet detectors need: ``[reorg]``, darknet's max-pool padding, ``[route]`` channel groups.

Registered under the ``visionkit`` package, so a saved ``.keras`` detector loads once this module is imported
(:data:`visionkit.core.model.CUSTOM_OBJECT_MODULES` lists it). The section semantics they implement are documented
in :mod:`visionkit.convert.darknet_sections`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="visionkit")
class DarknetReorg(keras.layers.Layer):
    """Darknet's ``[reorg]`` (``reorg_cpu`` with ``forward=0``), stride s: (H, W, C) -> (H/s, W/s, C·s²).

    In channel-first terms darknet reads the C x H x W input as if it were (C/s²) x (H·s) x (W·s) and writes
    ``out[(dy·s + dx)·C/s² + c, j, i] = in[c, j·s + dy, i·s + dx]`` into a buffer of C x H x W, which the next
    layer reads as (C·s²) x (H/s) x (W/s). It is a fixed permutation, done here with reshapes and transposes.
    """

    def __init__(self, stride: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, inputs):
        s = self.stride
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        batch = ops.shape(inputs)[0]
        x = ops.transpose(inputs, (0, 3, 1, 2))  # NCHW, as darknet stores it
        x = ops.reshape(x, (batch, channels // (s * s), height, s, width, s))  # seen as (C/s², H·s, W·s) rows
        x = ops.transpose(x, (0, 3, 5, 1, 2, 4))  # -> (dy, dx, c, j, i)
        x = ops.reshape(x, (batch, channels * s * s, height // s, width // s))  # the buffer, re-read
        return ops.transpose(x, (0, 2, 3, 1))

    def compute_output_shape(self, input_shape):
        s = self.stride
        return (input_shape[0], input_shape[1] // s, input_shape[2] // s, input_shape[3] * s * s)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="visionkit")
class DarknetMaxPool(keras.layers.Layer):
    """Darknet max-pooling: pad ``padding`` in all (``padding // 2`` before) with -inf, then a valid window."""

    def __init__(self, size: int = 2, stride: int = 2, padding: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.size, self.stride = int(size), int(stride)
        self.padding = self.size - 1 if padding is None else int(padding)

    def _pads(self, length: int) -> tuple[int, int, int]:
        before = self.padding // 2
        out = (length + self.padding - self.size) // self.stride + 1
        return before, max(0, (out - 1) * self.stride + self.size - length - before), out

    def call(self, inputs):
        top, bottom, _ = self._pads(inputs.shape[1])
        left, right, _ = self._pads(inputs.shape[2])
        x = ops.pad(inputs, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-np.inf)
        return ops.max_pool(x, self.size, self.stride, padding="valid")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._pads(input_shape[1])[2], self._pads(input_shape[2])[2], input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "stride": self.stride, "padding": self.padding}


@keras.saving.register_keras_serializable(package="visionkit")
class DarknetChannelGroup(keras.layers.Layer):
    """The ``group_id``-th of ``groups`` equal channel slices (``[route] groups=`` in ``route_layer.c``)."""

    def __init__(self, groups: int = 1, group_id: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.groups, self.group_id = int(groups), int(group_id)

    def call(self, inputs):
        width = inputs.shape[-1] // self.groups
        return inputs[..., self.group_id * width:(self.group_id + 1) * width]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // self.groups)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "group_id": self.group_id}
