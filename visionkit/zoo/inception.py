"""The Inception module and GoogLeNet (Inception v1).

Szegedy et al. 2015, "Going deeper with convolutions" (CVPR), Fig. 2(b) and Table 1. A module runs
four branches side by side on the same input and concatenates them along the channels:
1×1; 1×1 reduce → 3×3; 1×1 reduce → 5×5; 3×3/1 max pool → 1×1 "pool projection". The 1×1
reductions keep the 3×3 and 5×5 convolutions cheap (see ``visionkit models cost``).

GoogLeNet here is the inference network of Table 1 as released in Caffe (bvlc_googlenet): ReLU
convolutions with biases, no batch norm, 6,998,552 parameters at 224×224×3, 1000 classes. Left out:
the two auxiliary classifiers (training-time only) and local response normalisation (no
parameters). Layer names follow the Caffe model (``inception_4c_3x3_reduce``).
"""

from __future__ import annotations

import keras
from keras import layers

from visionkit.zoo.common import check_arguments, check_positive, classifier, pixel_input

#: Table 1: module -> (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj).
GOOGLENET_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
#: Modules after which Table 1 has a 3×3/2 max pool.
POOL_AFTER = {"3b": "pool3", "4e": "pool4"}


def _conv(x, filters, kernel, name, stride=1):
    return layers.Conv2D(filters, kernel, strides=stride, padding="same", activation="relu", name=name)(x)


def inception_module(x, filters=GOOGLENET_MODULES["3a"], name="inception"):
    """One Inception module; ``filters`` = (1×1, 3×3 reduce, 3×3, 5×5 reduce, 5×5, pool proj).

    Output channels: 1×1 + 3×3 + 5×5 + pool proj (3a on 28×28×192: 64 + 128 + 32 + 32 = 256).
    """
    n1, n3_reduce, n3, n5_reduce, n5, pool_proj = filters
    branch1 = _conv(x, n1, 1, f"{name}_1x1")
    branch3 = _conv(_conv(x, n3_reduce, 1, f"{name}_3x3_reduce"), n3, 3, f"{name}_3x3")
    branch5 = _conv(_conv(x, n5_reduce, 1, f"{name}_5x5_reduce"), n5, 5, f"{name}_5x5")
    pooled = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = _conv(pooled, pool_proj, 1, f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_output")([branch1, branch3, branch5, branch_pool])


def googlenet(input_shape=(224, 224, 3), num_classes=1000, include_top=True, dropout=0.4,
              classifier_activation="softmax"):
    """GoogLeNet: 7×7/2 conv → pool → 1×1, 3×3 convs → pool → 9 Inception modules → avg pool → dense."""
    shape = check_arguments("googlenet", input_shape, num_classes, include_top, min_size=32,
                            default_shape=(224, 224, 3))
    check_positive("googlenet", dropout=dropout)
    inputs, x = pixel_input(shape)
    x = _conv(x, 64, 7, "conv1_7x7_s2", stride=2)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_3x3_s2")(x)
    x = _conv(x, 64, 1, "conv2_3x3_reduce")
    x = _conv(x, 192, 3, "conv2_3x3")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2_3x3_s2")(x)
    for module, filters in GOOGLENET_MODULES.items():
        x = inception_module(x, filters, name=f"inception_{module}")
        if module in POOL_AFTER:
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{POOL_AFTER[module]}_3x3_s2")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="pool5_7x7_s1")(x)
        x = layers.Dropout(dropout, name="pool5_drop")(x)
        x = classifier(x, num_classes, classifier_activation)
    return keras.Model(inputs, x, name="googlenet")
