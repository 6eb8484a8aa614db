"""Small serialisable layers shared by the models."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="visionkit")
class ChannelNormalize(keras.layers.Layer):
    """(pixels[..., order] - mean) / std for RGB inputs in [0, 255], so saved models take raw pixels.

    ``channel_order="BGR"`` reverses the channels first (Caffe-trained weights such as VGG/ResNet).
    """

    def __init__(self, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), channel_order="RGB", **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        self.channel_order = channel_order

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.channel_order == "BGR":
            x = ops.flip(x, axis=-1)
        mean = ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        std = ops.convert_to_tensor(self.std, dtype=self.compute_dtype)
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "channel_order": self.channel_order}
