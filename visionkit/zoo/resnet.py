"""ResNet-50 built from the course's identity and convolutional blocks.

He, Zhang, Ren & Sun 2016, "Deep residual learning for image recognition" (CVPR), Table 1 (50-layer
column) and Fig. 5 (bottleneck block): 1×1 → 3×3 → 1×1 convolutions with a shortcut added before
the last ReLU. The *identity block* keeps the shape and adds the input unchanged; the
*convolutional block* (the paper's projection shortcut, option B) changes the channel count and,
with stride 2, halves the resolution, so its shortcut is a strided 1×1 conv + batch norm.

As in the original Caffe model and Keras Applications, the stride sits on the first 1×1 conv of a
block and convolutions keep their biases: 25,636,712 parameters at 224×224×3, 1000 classes
(torchvision's 25,557,032 drops the 79,680 conv biases that batch norm makes redundant). Layer
names follow Keras Applications (``conv3_block2_2_conv``, ``conv4_block6_out``), so ImageNet
weights can be copied by name from ``keras.applications.ResNet50`` with
:func:`visionkit.core.model.copy_weights_by_name`.
"""

from __future__ import annotations

import keras
from keras import layers

from visionkit.zoo.common import check_arguments, classifier, pixel_input

#: Stages conv2_x … conv5_x (Table 1): (bottleneck filters, blocks, stride of the first block).
#: Each block outputs 4× the bottleneck filters.
RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
BN_EPSILON = 1.001e-5


def _conv_bn(x, filters, kernel, stride, name, relu=True, padding="valid"):
    x = layers.Conv2D(filters, kernel, strides=stride, padding=padding, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def _main_path(x, filters, kernel_size, stride, name):
    """1×1 (stride ``stride``) → f×f "same" → 1×1, each with batch norm; ReLU after all but the last."""
    f1, f2, f3 = filters
    x = _conv_bn(x, f1, 1, stride, f"{name}_1")
    x = _conv_bn(x, f2, kernel_size, 1, f"{name}_2", padding="same")
    return _conv_bn(x, f3, 1, 1, f"{name}_3", relu=False)


def identity_block(x, filters, kernel_size=3, name="identity"):
    """Residual block whose shortcut is the input itself (input channels must equal ``filters[2]``)."""
    shortcut = x
    x = _main_path(x, filters, kernel_size, 1, name)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def convolutional_block(x, filters, kernel_size=3, stride=2, name="conv_block"):
    """Residual block whose shortcut is a 1×1 conv (stride ``stride``) + batch norm, to match the new shape."""
    shortcut = _conv_bn(x, filters[2], 1, stride, f"{name}_0", relu=False)
    x = _main_path(x, filters, kernel_size, stride, name)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def resnet50(input_shape=(224, 224, 3), num_classes=1000, include_top=True, classifier_activation="softmax"):
    """ResNet-50: 7×7/2 conv → 3×3/2 max pool → 3 + 4 + 6 + 3 bottleneck blocks → average pool → dense."""
    shape = check_arguments("resnet50", input_shape, num_classes, include_top, min_size=32, default_shape=(224, 224, 3))
    inputs, x = pixel_input(shape)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = _conv_bn(x, 64, 7, 2, "conv1")
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, blocks, stride) in enumerate(RESNET50_STAGES, start=2):
        triple = (filters, filters, 4 * filters)
        x = convolutional_block(x, triple, stride=stride, name=f"conv{stage}_block1")
        for block in range(2, blocks + 1):
            x = identity_block(x, triple, name=f"conv{stage}_block{block}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = classifier(x, num_classes, classifier_activation)
    return keras.Model(inputs, x, name="resnet50")
