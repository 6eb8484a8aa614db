"""Face encoders: FaceNet's Inception-ResNet-v1, and a small encoder on any registry backbone.

FaceNet: Schroff, Kalenichenko & Philbin, "FaceNet: A Unified Embedding for Face Recognition and Clustering",
CVPR 2015 (arXiv:1503.03832) — a network f maps a face to a 128-d encoding on the unit hypersphere (§3) and
the squared L2 distance between encodings decides "same person".
Inception-ResNet-v1: Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4, Inception-ResNet and the Impact of
Residual Connections on Learning", AAAI 2017 (arXiv:1602.07261), Figures 14 (overall schema), 7 (Reduction-A with
k=192, l=192, m=256, n=384), 10 (Inception-ResNet-A), 11 (Inception-ResNet-B), 12 (Reduction-B), 13
(Inception-ResNet-C); residuals are scaled before the addition (§3.3). The stem and block sizes below are those
of the FaceNet re-implementation whose weights were converted to Keras (160×160 input, 5/10/5 blocks, residual
scales 0.17/0.10/0.20, a 1792-channel top, a 128-unit bottleneck + batch norm), with TF-slim layer names
(``Conv2d_1a_3x3``, ``Block35_1_Branch_1_Conv2d_0b_3x3``, ``Mixed_6a`` …) so published weight files line up.

Every model here takes RGB pixels in [0, 255] and ends with an L2 normalisation, so saved models are
self-contained and ‖f(x)‖ = 1 (squared distances lie in [0, 4]).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from visionkit.core.errors import UsageError

EMBEDDING_DIM = 128
FACENET_INPUT = (160, 160, 3)
BN = {"momentum": 0.995, "epsilon": 0.001, "scale": False}

#: Stem (Szegedy et al. 2016, Fig. 14 with the FaceNet sizes): (name, filters, kernel, stride, padding); None = max pool.
STEM = (
    ("Conv2d_1a_3x3", 32, 3, 2, "valid"),
    ("Conv2d_2a_3x3", 32, 3, 1, "valid"),
    ("Conv2d_2b_3x3", 64, 3, 1, "same"),
    ("MaxPool_3a_3x3", None, 3, 2, "valid"),
    ("Conv2d_3b_1x1", 80, 1, 1, "valid"),
    ("Conv2d_4a_3x3", 192, 3, 1, "valid"),
    ("Conv2d_4b_3x3", 256, 3, 2, "valid"),
)

#: Residual blocks: name -> branches; each branch is a list of (layer suffix, filters, kernel).
RESIDUAL_BRANCHES = {
    "Block35": (  # Inception-ResNet-A (Fig. 10)
        (("Conv2d_1x1", 32, 1),),
        (("Conv2d_0a_1x1", 32, 1), ("Conv2d_0b_3x3", 32, 3)),
        (("Conv2d_0a_1x1", 32, 1), ("Conv2d_0b_3x3", 32, 3), ("Conv2d_0c_3x3", 32, 3)),
    ),
    "Block17": (  # Inception-ResNet-B (Fig. 11)
        (("Conv2d_1x1", 128, 1),),
        (("Conv2d_0a_1x1", 128, 1), ("Conv2d_0b_1x7", 128, (1, 7)), ("Conv2d_0c_7x1", 128, (7, 1))),
    ),
    "Block8": (  # Inception-ResNet-C (Fig. 13)
        (("Conv2d_1x1", 192, 1),),
        (("Conv2d_0a_1x1", 192, 1), ("Conv2d_0b_1x3", 192, (1, 3)), ("Conv2d_0c_3x1", 192, (3, 1))),
    ),
}

#: Reductions: name -> branches of (suffix, filters, kernel, stride); filters None = 3×3/2 max pool.
REDUCTIONS = {
    "Mixed_6a": (  # Reduction-A (Fig. 7), k=192, l=192, m=256, n=384
        (("Conv2d_1a_3x3", 384, 3, 2),),
        (("Conv2d_0a_1x1", 192, 1, 1), ("Conv2d_0b_3x3", 192, 3, 1), ("Conv2d_1a_3x3", 256, 3, 2)),
        (("MaxPool_1a_3x3", None, 3, 2),),
    ),
    "Mixed_7a": (  # Reduction-B (Fig. 12)
        (("Conv2d_0a_1x1", 256, 1, 1), ("Conv2d_1a_3x3", 384, 3, 2)),
        (("Conv2d_0a_1x1", 256, 1, 1), ("Conv2d_1a_3x3", 256, 3, 2)),
        (("Conv2d_0a_1x1", 256, 1, 1), ("Conv2d_0b_3x3", 256, 3, 1), ("Conv2d_1a_3x3", 256, 3, 2)),
        (("MaxPool_1a_3x3", None, 3, 2),),
    ),
}

#: The body in order: ("residual", block, repeats, scale) or ("reduction", name).
BODY = (
    ("residual", "Block35", 5, 0.17),
    ("reduction", "Mixed_6a"),
    ("residual", "Block17", 10, 0.10),
    ("reduction", "Mixed_7a"),
    ("residual", "Block8", 5, 0.20),
)


@keras.saving.register_keras_serializable(package="visionkit")
class PerImageStandardization(keras.layers.Layer):
    """(x - mean(x)) / max(std(x), 1/sqrt(N)) per image: the "prewhitening" the FaceNet weights were trained with."""

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        std = ops.std(x, axis=(1, 2, 3), keepdims=True)
        count = ops.cast(ops.prod(ops.shape(x)[1:]), self.compute_dtype)
        return (x - mean) / ops.maximum(std, ops.rsqrt(count))

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="visionkit")
class Grayscale(keras.layers.Layer):
    """ITU-R BT.601 luma replicated to three channels, so a model trained on grey faces sees colour photos alike."""

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        weights = ops.convert_to_tensor([0.299, 0.587, 0.114], dtype=self.compute_dtype)
        luma = ops.sum(x * weights, axis=-1, keepdims=True)
        return ops.concatenate([luma, luma, luma], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape


def _conv_bn(x, filters, kernel, stride, padding, name, activation=True):
    x = layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(axis=-1, name=f"{name}_BatchNorm", **BN)(x)
    return layers.Activation("relu", name=f"{name}_Activation")(x) if activation else x


def _residual_block(x, block, index, scale, activation=True):
    """One Inception-ResNet block: parallel branches, concat, 1×1 linear up-projection, scaled residual add."""
    prefix = f"{block}_{index}"
    branches = []
    for number, branch in enumerate(RESIDUAL_BRANCHES[block]):
        y = x
        for suffix, filters, kernel in branch:
            y = _conv_bn(y, filters, kernel, 1, "same", f"{prefix}_Branch_{number}_{suffix}")
        branches.append(y)
    mixed = layers.Concatenate(axis=-1, name=f"{prefix}_Concatenate")(branches)
    up = layers.Conv2D(x.shape[-1], 1, padding="same", use_bias=True, name=f"{prefix}_Conv2d_1x1")(mixed)
    up = layers.Rescaling(scale, name=f"{prefix}_ScaleSum")(up)
    x = layers.Add(name=f"{prefix}_Add")([x, up])
    return layers.Activation("relu", name=f"{prefix}_Activation")(x) if activation else x


def _reduction(x, name):
    branches = []
    for number, branch in enumerate(REDUCTIONS[name]):
        y = x
        for suffix, filters, kernel, stride in branch:
            layer_name = f"{name}_Branch_{number}_{suffix}"
            padding = "valid" if stride == 2 else "same"
            if filters is None:
                y = layers.MaxPooling2D(kernel, strides=stride, padding="valid", name=layer_name)(y)
            else:
                y = _conv_bn(y, filters, kernel, stride, padding, layer_name)
        branches.append(y)
    return layers.Concatenate(axis=-1, name=name)(branches)


def inception_resnet_v1(input_shape=FACENET_INPUT, embedding_dim=EMBEDDING_DIM, dropout=0.2, name="inception_resnet_v1"):
    """FaceNet's Inception-ResNet-v1 (Keras Functional), RGB [0, 255] in, L2-normalised ``embedding_dim`` out.

    About 22.8 M weights at 128-d. Weights of the published Keras FaceNet (an ``.h5`` file of this exact layer
    sequence) load with ``model.load_weights(path)``; the per-image standardisation and the final L2
    normalisation hold no weights.
    """
    if len(input_shape) != 3 or input_shape[-1] != 3 or any(s is not None and s < 75 for s in input_shape[:2]):
        raise UsageError(f"`input_shape` must be (height, width, 3) with sides ≥ 75. Received `input_shape={input_shape!r}`")
    if not isinstance(embedding_dim, int) or embedding_dim < 1:
        raise UsageError(f"`embedding_dim` must be a positive integer. Received `embedding_dim={embedding_dim!r}`")
    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    x = PerImageStandardization(name="prewhiten")(inputs)
    for layer_name, filters, kernel, stride, padding in STEM:
        if filters is None:
            x = layers.MaxPooling2D(kernel, strides=stride, padding=padding, name=layer_name)(x)
        else:
            x = _conv_bn(x, filters, kernel, stride, padding, layer_name)
    for stage in BODY:
        if stage[0] == "reduction":
            x = _reduction(x, stage[1])
            continue
        _, block, repeats, scale = stage
        for index in range(1, repeats + 1):
            x = _residual_block(x, block, index, scale)
    x = _residual_block(x, "Block8", 6, 1.0, activation=False)  # the last block: unscaled, no ReLU
    x = layers.GlobalAveragePooling2D(name="AvgPool")(x)
    x = layers.Dropout(dropout, name="Dropout")(x)
    x = layers.Dense(embedding_dim, use_bias=False, name="Bottleneck")(x)
    x = layers.BatchNormalization(name="Bottleneck_BatchNorm", **BN)(x)
    outputs = layers.UnitNormalization(axis=-1, name="l2_normalize")(x)
    return keras.Model(inputs, outputs, name=name)


HEADS = ("spatial", "pool")


def backbone_feature_layer(backbone: str, stride: int) -> str | None:
    """The backbone's layer at output ``stride`` from its builder module's ``FEATURE_LAYERS`` table (None: its output)."""
    import importlib

    from visionkit.core.registry import get_spec

    module = importlib.import_module(get_spec(backbone).builder.partition(":")[0])
    table = getattr(module, "FEATURE_LAYERS", {})
    if stride not in table and stride != 32:
        raise UsageError(f"{backbone!r} has no feature layer at stride {stride}; choose one of {sorted(table) or [32]}")
    return table.get(stride)


def face_encoder(backbone="efficientnet_lite0", input_shape=(112, 112, 3), embedding_dim=EMBEDDING_DIM,
                 grayscale=False, feature_stride=16, head="spatial", head_channels=64, dropout=0.3,
                 backbone_weights="default", name="face_encoder"):
    """A registry backbone (ImageNet weights by default), cut at ``feature_stride``, + a 128-d L2-normalised head.

    The transfer-learning recipe for small face sets: FaceNet's embedding (§3) on a pretrained feature extractor.
    ``head="spatial"``: a 1×1 convolution to ``head_channels``, flattened, then the linear embedding — faces are
    aligned, so where a feature sits matters (eyes are always at the same place); ``"pool"``: global average
    pooling then the embedding. The stride-16 features of an ImageNet network describe faces better than its
    last, most ImageNet-specific layers (measured on held-out AT&T identities; see the facenet_att_lite0 card).
    The backbone's batch norms always run in inference mode (batches of a few identities give poor statistics).
    ``grayscale`` converts inputs to luma first; ``backbone_weights="none"`` builds the architecture only.
    """
    from visionkit.core.model import load_backbone

    if not isinstance(embedding_dim, int) or embedding_dim < 1:
        raise UsageError(f"`embedding_dim` must be a positive integer. Received `embedding_dim={embedding_dim!r}`")
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise UsageError(f"`input_shape` must be (height, width, 3). Received `input_shape={input_shape!r}`")
    if head not in HEADS:
        raise UsageError(f"`head` must be one of {HEADS}. Received `head={head!r}`")
    weights = None if backbone_weights in (None, "none") else "default"
    base = load_backbone(backbone, tuple(input_shape), weights=weights)
    layer = backbone_feature_layer(backbone, feature_stride)
    trunk = base if layer is None else keras.Model(base.inputs, base.get_layer(layer).output, name=f"{backbone}_trunk")
    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    x = Grayscale(name="grayscale")(inputs) if grayscale else inputs
    x = trunk(x, training=False)
    if head == "spatial":
        x = layers.Conv2D(head_channels, 1, activation="relu", name="head_reduce")(x)
        x = layers.Flatten(name="head_flatten")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(embedding_dim, name="embedding")(x)
    outputs = layers.UnitNormalization(axis=-1, name="l2_normalize")(x)
    return keras.Model(inputs, outputs, name=name)


def set_trainable_tail(model, fraction: float) -> int:
    """Train only the last ``fraction`` of the backbone's layers (0: head only, 1: everything); returns how many."""
    trunk = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    trunk.trainable = fraction > 0
    count = int(round(len(trunk.layers) * min(max(fraction, 0.0), 1.0)))
    for index, layer in enumerate(trunk.layers):
        layer.trainable = index >= len(trunk.layers) - count
    return count


__all__ = ["inception_resnet_v1", "face_encoder", "set_trainable_tail", "backbone_feature_layer", "PerImageStandardization", "Grayscale", "EMBEDDING_DIM"]
