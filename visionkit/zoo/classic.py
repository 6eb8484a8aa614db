"""The classic CNNs of the course as Keras builders: LeNet-5, AlexNet, VGG-16/19 and two small examples.

ResNet-50 is in :mod:`visionkit.zoo.resnet`, the Inception module and GoogLeNet in
:mod:`visionkit.zoo.inception`, MobileNet v1/v2 in :mod:`visionkit.zoo.mobilenet` and
EfficientNet-Lite0 in :mod:`visionkit.zoo.efficientnet_lite`; all are in the model registry
(``pretrained/registry.d/architectures.toml``, task ``architecture``) and can be read with
``visionkit models summary NAME``.

Every builder takes ``input_shape``, ``num_classes``, ``include_top`` and ``classifier_activation``
(``None`` gives logits), inputs are pixels in [0, 255] (a ``Rescaling(1/255)`` layer comes first),
and layer names are fixed. With ``include_top=False`` the model ends at the last convolutional
feature map (no pooling), which is what transfer learning builds on.
"""

from __future__ import annotations

import keras
from keras import layers

from visionkit.core.errors import UsageError
from visionkit.zoo.common import check_arguments, check_positive, classifier, pixel_input

#: VGG configurations (Simonyan & Zisserman 2015, Table 1, columns D and E): convolutions per block.
VGG_BLOCKS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
VGG_FILTERS = (64, 128, 256, 512, 512)

#: AlexNet's convolutions (Krizhevsky et al. 2012, Sec. 3.5 and Fig. 2, both GPUs' halves together):
#: (name, filters, kernel, stride, padding, followed by a 3×3/2 max pool).
ALEXNET_CONVS = (
    ("conv1", 96, 11, 4, "valid", True),
    ("conv2", 256, 5, 1, "same", True),
    ("conv3", 384, 3, 1, "same", False),
    ("conv4", 384, 3, 1, "same", False),
    ("conv5", 256, 3, 1, "same", True),
)

LENET_VARIANTS = ("classic", "modern")


def lenet5(input_shape=(32, 32, 1), num_classes=10, include_top=True, variant="classic",
           classifier_activation="softmax"):
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document recognition").

    C1 conv 5×5×6 → S2 pool 2×2 → C3 conv 5×5×16 → S4 pool 2×2 → C5 dense 120 → F6 dense 84 → output,
    as the course draws it: 61,706 parameters at 32×32×1 with 10 classes (156 / 2,416 / 48,120 /
    10,164 / 850). ``variant="classic"`` uses tanh and average pooling; ``"modern"`` uses ReLU and
    max pooling. The paper differs in ways that change the count: C3 connects to subsets of S2's
    maps (1,516 parameters, not 2,416), S2/S4 have a trainable weight and bias per map, the
    output layer is Euclidean RBF units, and tanh is scaled (1.7159·tanh(2a/3)).
    """
    shape = check_arguments("lenet5", input_shape, num_classes, include_top, min_size=16, default_shape=(32, 32, 1))
    if variant not in LENET_VARIANTS:
        raise UsageError(f"lenet5: variant must be one of {', '.join(LENET_VARIANTS)}; received variant={variant!r}")
    activation = "tanh" if variant == "classic" else "relu"
    pool = layers.AveragePooling2D if variant == "classic" else layers.MaxPooling2D
    inputs, x = pixel_input(shape)
    x = layers.Conv2D(6, 5, activation=activation, name="c1")(x)
    x = pool(2, name="s2")(x)
    x = layers.Conv2D(16, 5, activation=activation, name="c3")(x)
    x = pool(2, name="s4")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(120, activation=activation, name="c5")(x)
        x = layers.Dense(84, activation=activation, name="f6")(x)
        x = classifier(x, num_classes, classifier_activation)
    return keras.Model(inputs, x, name=f"lenet5_{variant}")


def alexnet(input_shape=(227, 227, 3), num_classes=1000, include_top=True, dropout=0.5,
            classifier_activation="softmax"):
    """AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet classification with deep CNNs"), single tower.

    Five convolutions (96, 256, 384, 384, 256 filters; 3×3/2 overlapping max pools after 1, 2, 5),
    then 4096 → 4096 → classes with dropout after the first two dense layers. 227×227 inputs give
    the paper's 55×55×96 first layer. The paper split conv2/4/5 between two GPUs (grouped
    convolutions: 60,965,224 parameters) and used local response normalisation (no parameters);
    this single-tower form, as in the course, has neither: 62,378,344 parameters.
    """
    shape = check_arguments("alexnet", input_shape, num_classes, include_top, min_size=67, default_shape=(227, 227, 3))
    check_positive("alexnet", dropout=dropout)
    inputs, x = pixel_input(shape)
    for index, (name, filters, kernel, stride, padding, pooled) in enumerate(ALEXNET_CONVS, start=1):
        x = layers.Conv2D(filters, kernel, strides=stride, padding=padding, activation="relu", name=name)(x)
        if pooled:
            x = layers.MaxPooling2D(3, strides=2, name=f"pool{index}")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        for name in ("fc6", "fc7"):
            x = layers.Dense(4096, activation="relu", name=name)(x)
            x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
        x = classifier(x, num_classes, classifier_activation)
    return keras.Model(inputs, x, name="alexnet")


def vgg(depth=16, input_shape=(224, 224, 3), num_classes=1000, include_top=True, dropout=0.5,
        classifier_activation="softmax"):
    """VGG-16 or VGG-19 (Simonyan & Zisserman 2015, "Very deep convolutional networks", Table 1 D/E).

    Blocks of 3×3 "same" convolutions (64, 128, 256, 512, 512 filters) each closed by a 2×2/2 max
    pool, then 4096 → 4096 → classes. Layer names are those of Keras Applications
    (``block3_conv2``, ``fc1``, ``predictions``); the paper's dropout (0.5) after fc1 and fc2 is
    added as ``fc1_dropout``/``fc2_dropout`` (no parameters). VGG-16: 138,357,544 parameters.
    """
    if depth not in VGG_BLOCKS:
        raise UsageError(f"vgg: depth must be one of {sorted(VGG_BLOCKS)}; received depth={depth!r}")
    name = f"vgg{depth}"
    shape = check_arguments(name, input_shape, num_classes, include_top, min_size=32, default_shape=(224, 224, 3))
    check_positive(name, dropout=dropout)
    inputs, x = pixel_input(shape)
    for block, (convs, filters) in enumerate(zip(VGG_BLOCKS[depth], VGG_FILTERS), start=1):
        for conv in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        for fc in ("fc1", "fc2"):
            x = layers.Dense(4096, activation="relu", name=fc)(x)
            x = layers.Dropout(dropout, name=f"{fc}_dropout")(x)
        x = classifier(x, num_classes, classifier_activation)
    return keras.Model(inputs, x, name=name)


def vgg16(input_shape=(224, 224, 3), num_classes=1000, include_top=True, dropout=0.5,
          classifier_activation="softmax"):
    """VGG-16 (configuration D): 13 convolutions + 3 dense layers. See :func:`vgg`."""
    return vgg(16, input_shape, num_classes, include_top, dropout, classifier_activation)


def vgg19(input_shape=(224, 224, 3), num_classes=1000, include_top=True, dropout=0.5,
          classifier_activation="softmax"):
    """VGG-19 (configuration E): 16 convolutions + 3 dense layers. See :func:`vgg`."""
    return vgg(19, input_shape, num_classes, include_top, dropout, classifier_activation)


def _head_activation(num_classes: int, classifier_activation: str | None) -> str | None:
    """One output unit means a binary classifier: sigmoid instead of softmax."""
    if num_classes == 1 and classifier_activation == "softmax":
        return "sigmoid"
    return classifier_activation


def tiny_sequential_cnn(input_shape=(64, 64, 3), num_classes=1, include_top=True, classifier_activation="softmax"):
    """The course's first Keras model (Sequential).

    ZeroPad 3 → Conv 7×7×32 → BN → ReLU → MaxPool 2 → Flatten → Dense.

    A binary classifier (one sigmoid unit) by default: 37,633 parameters at 64×64×3 (37,569
    trainable; the 64 non-trainable are batch norm's moving mean and variance).
    ``num_classes > 1`` gives a softmax layer instead.
    """
    shape = check_arguments("tiny_sequential_cnn", input_shape, num_classes, include_top, min_size=2,
                            default_shape=(64, 64, 3))
    stack = [
        keras.Input(shape=shape, name="pixels"),
        layers.Rescaling(1.0 / 255.0, name="rescale"),
        layers.ZeroPadding2D(3, name="zero_pad"),
        layers.Conv2D(32, 7, name="conv0"),
        layers.BatchNormalization(axis=3, name="bn0"),
        layers.ReLU(name="relu0"),
        layers.MaxPooling2D(2, name="max_pool"),
    ]
    if include_top:
        stack += [layers.Flatten(name="flatten"),
                  layers.Dense(num_classes, activation=_head_activation(num_classes, classifier_activation),
                               name="predictions")]
    return keras.Sequential(stack, name="tiny_sequential_cnn")


def tiny_functional_cnn(input_shape=(64, 64, 3), num_classes=6, include_top=True, classifier_activation="softmax"):
    """The course's Functional example.

    Conv 4×4×8 → ReLU → MaxPool 8/8 → Conv 2×2×16 → ReLU → MaxPool 4/4 → Flatten → Dense.

    All "same" padding; 1,310 parameters at 64×64×3 with 6 classes (392 + 528 + 390).
    """
    shape = check_arguments("tiny_functional_cnn", input_shape, num_classes, include_top, min_size=1,
                            default_shape=(64, 64, 3))
    inputs, x = pixel_input(shape)
    x = layers.Conv2D(8, 4, padding="same", name="conv1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.MaxPooling2D(8, strides=8, padding="same", name="pool1")(x)
    x = layers.Conv2D(16, 2, padding="same", name="conv2")(x)
    x = layers.ReLU(name="relu2")(x)
    x = layers.MaxPooling2D(4, strides=4, padding="same", name="pool2")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(num_classes, activation=_head_activation(num_classes, classifier_activation),
                         name="predictions")(x)
    return keras.Model(inputs, x, name="tiny_functional_cnn")
