"""MobileNet v1 (depthwise-separable convolutions) and MobileNet v2 (inverted residuals, linear bottlenecks).

MobileNet v1: Howard et al. 2017, "MobileNets: efficient convolutional neural networks for mobile
vision applications", Table 1 (body) and Sec. 3.2 (width multiplier α). A depthwise-separable
block is a 3×3 depthwise conv (one filter per channel) then a 1×1 pointwise conv, each with batch
norm and ReLU6. α = 1: 4,253,864 parameters at 224×224×3, 1000 classes, 569 M multiply-adds (paper:
4.2 M, 569 M). The count includes batch norm's moving mean and variance (21,888 non-trainable).

MobileNet v2: Sandler et al. 2018, "MobileNetV2: inverted residuals and linear bottlenecks", Table 2
(body) and Fig. 4. A block expands the channels t× with a 1×1 conv + ReLU6, filters them with a 3×3
depthwise conv + ReLU6, and projects back with a *linear* 1×1 conv (no activation); when input and
output shapes agree the input is added. α = 1: 3,538,984 parameters (34,112 of them batch norm
moving statistics), about 300 M multiply-adds (paper: 3.4 M, 300 M).

Layer names, padding layers and the classifier heads follow Keras Applications, so the same-named
ImageNet weights can be copied with :func:`visionkit.core.model.copy_weights_by_name`.
"""

from __future__ import annotations

import keras
from keras import layers

from visionkit.zoo.common import check_arguments, check_positive, classifier, pad_for_stride, pixel_input

#: MobileNet v1 body (Table 1), after the first 3×3/2 conv: (pointwise filters, depthwise stride).
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                       (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))

#: MobileNet v2 body (Table 2): (expansion t, output channels c, repeats n, first stride s).
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
V2_BN = {"epsilon": 1e-3, "momentum": 0.999}


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to the nearest multiple of ``divisor``, never losing more than 10 %.

    The rule of the MobileNet v2 reference implementation (TF-slim ``_make_divisible``).
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def depthwise_separable_block(x, pointwise_filters, stride=1, depth_multiplier=1, block_id=1):
    """3×3 depthwise conv (stride ``stride``) + BN + ReLU6, then 1×1 conv to ``pointwise_filters`` + BN + ReLU6."""
    if stride == 1:
        padding = "same"
    else:
        x = pad_for_stride(x, 3, stride, name=f"conv_pad_{block_id}")
        padding = "valid"
    x = layers.DepthwiseConv2D(3, strides=stride, padding=padding, depth_multiplier=depth_multiplier,
                               use_bias=False, name=f"conv_dw_{block_id}")(x)
    x = layers.BatchNormalization(name=f"conv_dw_{block_id}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
    x = layers.Conv2D(pointwise_filters, 1, use_bias=False, name=f"conv_pw_{block_id}")(x)
    x = layers.BatchNormalization(name=f"conv_pw_{block_id}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)


def mobilenet_v1(input_shape=(224, 224, 3), num_classes=1000, include_top=True, alpha=1.0, depth_multiplier=1,
                 dropout=1e-3, classifier_activation="softmax"):
    """MobileNet v1 with width multiplier ``alpha`` (filters × α) and ``depth_multiplier``.

    The paper's resolution multiplier ρ is simply a smaller ``input_shape``.

    The classifier is a 1×1 conv on the pooled features (as in the released models), which has the
    same parameters as a dense layer.
    """
    shape = check_arguments("mobilenet_v1", input_shape, num_classes, include_top, min_size=32,
                            default_shape=(224, 224, 3))
    check_positive("mobilenet_v1", alpha=alpha, depth_multiplier=depth_multiplier, dropout=dropout)
    inputs, x = pixel_input(shape)
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="conv1")(x)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for block_id, (filters, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        x = depthwise_separable_block(x, int(filters * alpha), stride, depth_multiplier, block_id)
    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True, name="global_average_pooling2d")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(num_classes, 1, padding="same", name="conv_preds")(x)
        x = layers.Reshape((num_classes,), name="reshape_2")(x)
        x = layers.Activation(classifier_activation or "linear", name="predictions")(x)
    return keras.Model(inputs, x, name=f"mobilenet_v1_{alpha:0.2f}")


def inverted_residual_block(x, expansion, filters, stride, block_id):
    """Expand 1×1 (×``expansion``) + ReLU6 → 3×3 depthwise + ReLU6 → linear 1×1 projection (+ input)."""
    in_channels = x.shape[-1]
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    inputs = x
    if expansion != 1:
        x = layers.Conv2D(expansion * in_channels, 1, use_bias=False, name=f"{prefix}expand")(x)
        x = layers.BatchNormalization(**V2_BN, name=f"{prefix}expand_BN")(x)
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    if stride == 1:
        padding = "same"
    else:
        x = pad_for_stride(x, 3, stride, name=f"{prefix}pad")
        padding = "valid"
    x = layers.DepthwiseConv2D(3, strides=stride, padding=padding, use_bias=False, name=f"{prefix}depthwise")(x)
    x = layers.BatchNormalization(**V2_BN, name=f"{prefix}depthwise_BN")(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}project")(x)
    x = layers.BatchNormalization(**V2_BN, name=f"{prefix}project_BN")(x)
    if stride == 1 and in_channels == filters:
        x = layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def mobilenet_v2(input_shape=(224, 224, 3), num_classes=1000, include_top=True, alpha=1.0,
                 classifier_activation="softmax"):
    """MobileNet v2 with width multiplier ``alpha``; the last 1×1 conv keeps 1280 channels unless α > 1."""
    shape = check_arguments("mobilenet_v2", input_shape, num_classes, include_top, min_size=32,
                            default_shape=(224, 224, 3))
    check_positive("mobilenet_v2", alpha=alpha)
    inputs, x = pixel_input(shape)
    x = layers.Conv2D(make_divisible(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="Conv1")(x)
    x = layers.BatchNormalization(**V2_BN, name="bn_Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    block_id = 0
    for expansion, channels, repeats, first_stride in MOBILENET_V2_STAGES:
        filters = make_divisible(int(channels * alpha))
        for repeat in range(repeats):
            x = inverted_residual_block(x, expansion, filters, first_stride if repeat == 0 else 1, block_id)
            block_id += 1
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    x = layers.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    x = layers.BatchNormalization(**V2_BN, name="Conv_1_bn")(x)
    x = layers.ReLU(6.0, name="out_relu")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
        x = classifier(x, num_classes, classifier_activation)
    return keras.Model(inputs, x, name=f"mobilenet_v2_{alpha:0.2f}")
