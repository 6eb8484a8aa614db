"""U-Net builders: the classic U-Net, and a U-Net whose encoder is a pretrained registry backbone.

Classic U-Net: Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015 (arXiv:1505.04597), section 2: a contracting path of double 3x3
convolutions + ReLU and 2x2 max-pooling that doubles the filters at each step, an expanding path of
2x2 up-convolutions that halve them, concatenated skip connections, and a 1x1 convolution to the
classes. Two changes from the paper, both common practice: "same" padding, so that the output mask
has the input's size and no cropping of skips is needed, and optional batch normalisation after
each convolution (Ioffe & Szegedy 2015), which makes small-data training far more stable.

Backbone U-Net: the encoder is a registry classifier without its head (weights from ImageNet via
:func:`visionkit.core.model.load_backbone`); the skip connections are that network's layers at output
strides 2, 4, 8, 16 and the bottom at stride 32, chosen by layer name from :data:`SKIP_LAYERS` (the
approach of the segmentation_models library, Yakubovskiy 2019). Every model takes RGB pixels in
[0, 255] and normalises inside itself.
"""

from __future__ import annotations

import keras
from keras import layers

from visionkit.core.errors import UsageError
from visionkit.zoo.efficientnet_lite import FEATURE_LAYERS as LITE_FEATURE_LAYERS

HEADS = ("softmax", "sigmoid")

#: backbone registry name -> {output stride: layer name}; strides 2..16 are skips, 32 is the bottom.
#: EfficientNet-Lite0's bottom is its last block's output (320 channels) rather than ``top_activation``: the
#: 1280-filter head convolution and a decoder wide enough to read it would add 1.9 M weights (8 MB) to the model.
SKIP_LAYERS = {
    "efficientnet_lite0": {**{s: LITE_FEATURE_LAYERS[s] for s in (2, 4, 8, 16)}, 32: "block7a_project_bn"},
    "mobilenet_v2": {2: "block_1_expand_relu", 4: "block_3_expand_relu", 8: "block_6_expand_relu",
                     16: "block_13_expand_relu", 32: "out_relu"},
}

#: Decoder filters at strides 16, 8, 4, 2, 1 of the backbone U-Net (kept small so that models stay under 20 MB).
DEFAULT_DECODER_FILTERS = (128, 64, 48, 32, 16)


def _check_common(num_classes: int, head: str) -> None:
    if not isinstance(num_classes, int) or num_classes < 2:
        raise UsageError(f"`num_classes` must be an integer >= 2 (background counts). Received `num_classes={num_classes!r}`")
    if head not in HEADS:
        raise UsageError(f"`head` must be one of {HEADS}. Received `head={head!r}`")
    if head == "sigmoid" and num_classes != 2:
        raise UsageError(f"a sigmoid head is for two classes (background / object); use head='softmax' for "
                         f"{num_classes} classes. Received `num_classes={num_classes}`")


def _check_shape(input_shape, multiple: int) -> None:
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise UsageError(f"`input_shape` must be (height, width, 3). Received `input_shape={input_shape!r}`")
    for side in input_shape[:2]:
        if side is not None and (side < multiple or side % multiple):
            raise UsageError(f"image sides must be multiples of {multiple} for this depth. "
                             f"Received `input_shape={tuple(input_shape)!r}`")


def conv_block(x, filters: int, name: str, batch_norm: bool = True):
    """Two 3x3 convolutions, each followed by [batch norm and] ReLU (the paper's basic unit)."""
    for index in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm, kernel_initializer="he_normal",
                          name=f"{name}_conv{index}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{index}")(x)
        x = layers.ReLU(name=f"{name}_relu{index}")(x)
    return x


def up_block(x, skip, filters: int, name: str, batch_norm: bool = True):
    """2x2 transposed convolution (stride 2), concatenation with the skip, then a double convolution."""
    x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_upconv")(x)
    if skip is not None:
        x = layers.Concatenate(name=f"{name}_concat")([x, skip])
    return conv_block(x, filters, name, batch_norm)


def segmentation_head(x, num_classes: int, head: str):
    """1x1 convolution to per-pixel probabilities: softmax over classes, or one sigmoid channel."""
    channels = 1 if head == "sigmoid" else num_classes
    return layers.Conv2D(channels, 1, activation=head, dtype="float32", name="segmentation_head")(x)


def unet(input_shape=(None, None, 3), num_classes: int = 2, depth: int = 4, base_filters: int = 64,
         batch_norm: bool = True, dropout: float = 0.0, head: str = "softmax", name: str = "unet"):
    """The classic U-Net; ``depth`` poolings (4 in the paper), ``base_filters`` at full resolution (64 in the paper).

    Image sides must be multiples of ``2 ** depth``. ``dropout`` is applied at the bottom of the "U",
    where the paper places it (section 3.1). Outputs (H, W, num_classes) softmax or (H, W, 1) sigmoid.
    """
    _check_common(num_classes, head)
    if not isinstance(depth, int) or not 1 <= depth <= 6:
        raise UsageError(f"`depth` must be an integer from 1 to 6. Received `depth={depth!r}`")
    if not isinstance(base_filters, int) or base_filters < 1:
        raise UsageError(f"`base_filters` must be a positive integer. Received `base_filters={base_filters!r}`")
    if not 0 <= dropout < 1:
        raise UsageError(f"`dropout` must be in [0, 1). Received `dropout={dropout!r}`")
    _check_shape(input_shape, 2 ** depth)
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(inputs)
    skips = []
    for level in range(depth):
        x = conv_block(x, base_filters * 2 ** level, f"down{level + 1}", batch_norm)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
    x = conv_block(x, base_filters * 2 ** depth, "bottom", batch_norm)
    if dropout:
        x = layers.Dropout(dropout, name="bottom_dropout")(x)
    for level in reversed(range(depth)):
        x = up_block(x, skips[level], base_filters * 2 ** level, f"up{level + 1}", batch_norm)
    return keras.Model(inputs, segmentation_head(x, num_classes, head), name=name)


def skip_layers(backbone: str) -> dict[int, str]:
    """The {stride: layer name} table of ``backbone``, or a UsageError naming the supported ones."""
    key = backbone.strip().lower().replace("-", "_")
    if key not in SKIP_LAYERS:
        raise UsageError(f"no U-Net skip table for backbone {backbone!r}; choose one of {', '.join(sorted(SKIP_LAYERS))}")
    return SKIP_LAYERS[key]


def unet_backbone(backbone: str = "efficientnet_lite0", input_shape=(None, None, 3), num_classes: int = 2,
                  decoder_filters=DEFAULT_DECODER_FILTERS, freeze_encoder: bool = False, head: str = "softmax",
                  weights: str | None = "default", batch_norm: bool = True, name: str | None = None):
    """A U-Net whose encoder is registry model ``backbone`` (ImageNet weights unless ``weights=None``).

    ``weights`` is "default" (ImageNet) or None / "none". Skips come from :data:`SKIP_LAYERS`; the decoder
    up-samples from stride 32 with one :func:`up_block` per stride (16, 8, 4, 2, 1) using ``decoder_filters``.
    ``freeze_encoder`` makes the backbone's layers untrainable; its batch-norm layers are frozen (inference
    mode) in any case, see :func:`set_encoder_trainable`.
    Image sides must be multiples of 32.
    """
    from visionkit.core.model import load_backbone

    _check_common(num_classes, head)
    weights = None if weights in (None, "none") else weights  # "none" from registry options (TOML has no null)
    table = skip_layers(backbone)
    if len(decoder_filters) != 5 or any(int(f) < 1 for f in decoder_filters):
        raise UsageError(f"`decoder_filters` must be 5 positive integers (strides 16, 8, 4, 2, 1). "
                         f"Received `decoder_filters={decoder_filters!r}`")
    _check_shape(input_shape, 32)
    encoder = load_backbone(backbone, tuple(input_shape), weights=weights)
    x = encoder.get_layer(table[32]).output
    for stride, filters in zip((16, 8, 4, 2, 1), decoder_filters):
        skip = encoder.get_layer(table[stride]).output if stride in table else None
        x = up_block(x, skip, int(filters), f"decoder_s{stride}", batch_norm)
    model = keras.Model(encoder.inputs, segmentation_head(x, num_classes, head),
                        name=name or f"unet_{backbone.replace('-', '_')}")
    set_encoder_trainable(model, encoder_layer_names(model), not freeze_encoder)
    return model


def encoder_layer_names(model) -> list[str]:
    """Names of the layers that belong to the encoder of a backbone U-Net (all but the decoder and head)."""
    return [layer.name for layer in model.layers
            if not layer.name.startswith("decoder_") and layer.name != "segmentation_head" and layer.weights]


def set_encoder_trainable(model, names, trainable: bool, batch_norm: bool = False) -> None:
    """Freeze (``trainable=False``) or unfreeze the named encoder layers; recompile the model afterwards.

    The encoder's batch-norm layers stay frozen, i.e. in inference mode with their ImageNet statistics, unless
    ``batch_norm`` is true: with the small batches of segmentation training their batch statistics are noisy
    and the moving averages lag the changing weights, so that the model in inference mode no longer matches the
    model that was trained (the fine-tuning advice of the Keras transfer-learning guide).
    """
    for layer_name in names:
        layer = model.get_layer(layer_name)
        is_norm = isinstance(layer, layers.BatchNormalization)
        layer.trainable = bool(trainable and (batch_norm or not is_norm))
