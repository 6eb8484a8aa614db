"""dlib's ResNet face encoder (``dlib_face_recognition_resnet_model_v1.dat``) as a Keras model.

The network of dlib's ``examples/dnn_face_recognition_ex.cpp`` (Davis King, 2017; the encoder of the
``face_recognition`` package): a 150×150 RGB aligned face chip → a 128-d descriptor; two chips are the same person
when the Euclidean distance of their descriptors is below 0.6 (99.38 % on LFW, dlib's figure).

Semantics reproduced exactly (``dlib/dnn/layers.h``, ``input.h``, ``cuda/cpu_dlib.cpp``):

* input: ``(pixel − avg) / 256`` per channel, the three averages stored in the file (122.782, 117.001, 104.298);
* ``con<N, k, k, s, s>``: padding ``k // 2`` when the stride is 1, else 0 (so the stride-2 convolutions are
  "valid", 150 → 72 for the 7×7 stem); a bias, then dlib's ``affine_`` (the test-time form of its batch norm, a
  per-channel ``x·γ + β``), which is folded here into the convolution's kernel and bias;
* ``max_pool<3,3,2,2>`` and ``avg_pool<2,2,2,2>``: no padding (the padding is 0 whenever the stride is not 1);
* residual block (``ares``): ``relu(x + affine(con(relu(affine(con(x))))))``, two 3×3 convolutions;
* downsampling block (``ares_down``): the first convolution has stride 2 and the shortcut is a 2×2/2 average
  pool of the input. ``add_prev_`` adds tensors of *different* shapes: the output has the larger of each dimension
  and the smaller operand is zero-extended at the end of rows, columns and channels (``cpu::add``). This is real:
  channels double (32 → 64 …, the pooled input fills the first half) and at 8×8 → the convolution gives 3×3 but the
  pool 4×4, at 4×4 → 1×1 against 2×2 (a zero-padded corner);
* ``avg_pool_everything`` is a global average pool; ``fc_no_bias<128>`` a dense layer without bias.

:data:`CHIP_TEMPLATE_150` maps MTCNN's five landmarks onto the chip dlib's ``get_face_chip_details(shape, 150,
0.25)`` cuts (fitted from data; see ``benchmarks/fit_dlib_chip_template.py``).
"""

from __future__ import annotations

import os

import keras
import numpy as np
from keras import layers

from visionkit.convert.dlib_dnn import CONV_MODE, DlibLayer, read_dnn
from visionkit.core.errors import UsageError, WeightsError
from visionkit.core.layers import ChannelNormalize
from visionkit.faces.align import CHIP_TEMPLATE_150  # noqa: F401  (its home is align; kept importable here)

#: Stages from the input (dlib's alevel4 … alevel0): (filters, residual blocks, stride of the first block).
STAGES = ((32, 3, 1), (64, 4, 2), (128, 3, 2), (256, 3, 2), (256, 1, 2))
STEM_FILTERS, STEM_KERNEL = 32, 7
DESCRIPTOR_DIM = 128
INPUT_SIZE = 150
#: dlib's ``input_rgb_image_sized`` defaults (the released file stores the same values): (x − avg) / 256.
DLIB_INPUT_MEAN = (122.782, 117.001, 104.298)
DLIB_INPUT_SCALE = 256.0
#: dlib's published threshold on the Euclidean distance of raw descriptors (``face_recognition``'s tolerance).
DLIB_DISTANCE_THRESHOLD = 0.6


def _blocks():
    """(name, filters, stride) of every residual block, from the input."""
    for stage, (filters, count, stride) in enumerate(STAGES, start=1):
        for index in range(1, count + 1):
            yield f"stage{stage}_block{index}", filters, stride if index == 1 else 1


def conv_layer_names() -> list[str]:
    """The Keras convolution layers in dlib's order (input outwards), each holding one ``con`` + ``affine`` pair."""
    names = ["stem_conv"]
    for name, _, _ in _blocks():
        names += [f"{name}_conv1", f"{name}_conv2"]
    return names


def dlib_layer_kinds() -> list[str]:
    """The network's dlib layer sequence, outermost first, as ``dnn_face_recognition_ex.cpp``'s ``anet_type`` reads."""
    inner = ["max_pool", "relu", "affine", "con"]  # stem, above the input
    for _, _, stride in _blocks():
        branch = ["affine", "con", "relu", "affine", "con", "tag"]  # BN<con<relu<BN<con<tag1<x>>>>>>
        if stride == 1:
            inner = ["relu", "add_prev", *branch] + inner
        else:  # relu<add_prev2<avg_pool<skip1<tag2<branch>>>>>
            inner = ["relu", "add_prev", "avg_pool", "skip", "tag", *branch] + inner
    return ["loss_metric", "fc", "avg_pool", *inner, "input_rgb_image_sized"]


def _zero_extend(x, shape, name):
    """``x`` zero-padded at the end of rows, columns and channels to ``shape`` (h, w, c): dlib's add_prev_ operand."""
    height, width, channels = (int(v) for v in x.shape[1:])
    if (height, width) != tuple(shape[:2]):
        x = layers.ZeroPadding2D(((0, shape[0] - height), (0, shape[1] - width)), name=f"{name}_pad_rows")(x)
    if channels != shape[2]:  # channels as a third spatial axis, so a standard padding layer extends them
        x = layers.Reshape((*shape[:2], channels, 1), name=f"{name}_as_volume")(x)
        x = layers.ZeroPadding3D(((0, 0), (0, 0), (0, shape[2] - channels)), name=f"{name}_pad_channels")(x)
        x = layers.Reshape(tuple(shape), name=f"{name}_as_image")(x)
    return x


def dlib_add_prev(a, b, name):
    """dlib's ``add_prev_``: ``a + b`` at the larger of each dimension, the smaller operand zero-extended (``cpu::add``)."""
    shape = tuple(max(int(p), int(q)) for p, q in zip(a.shape[1:], b.shape[1:]))
    return layers.Add(name=f"{name}_add")([_zero_extend(a, shape, f"{name}_main"),
                                           _zero_extend(b, shape, f"{name}_shortcut")])


def _conv(x, filters, kernel, stride, name):
    """dlib's con_ (+ its affine_, folded in): padding k//2 at stride 1, none otherwise."""
    return layers.Conv2D(filters, kernel, strides=stride, padding="same" if stride == 1 else "valid", name=name)(x)


def _residual_block(x, filters, stride, name):
    y = _conv(x, filters, 3, stride, f"{name}_conv1")
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(y, filters, 3, 1, f"{name}_conv2")
    shortcut = x if stride == 1 else layers.AveragePooling2D(2, strides=2, name=f"{name}_shortcut_pool")(x)
    return layers.ReLU(name=f"{name}_out")(dlib_add_prev(y, shortcut, name))


def stage_sizes(side: int) -> list[int]:
    """Feature-map side after the stem convolution, the stem pool and each stage, for an input ``side``.

    dlib's output sizes: ``1 + (n + 2·pad − k) // stride`` (``cpu_dlib.cpp``); a downsampling block gives the larger
    of its convolution's and its pool's. 150 → [72, 35, 35, 17, 8, 4, 2]. Empty if a window no longer fits.
    """
    sizes = [1 + (side - STEM_KERNEL) // 2]
    sizes.append(1 + (sizes[-1] - 3) // 2)
    for _, _, stride in STAGES:
        n = sizes[-1]
        sizes.append(n if stride == 1 else max(1 + (n - 3) // 2, 1 + (n - 2) // 2))
        if stride != 1 and n < 3:
            return []
    return sizes if sizes[0] >= 3 else []


MIN_INPUT_SIDE = next(side for side in range(STEM_KERNEL, 1024) if stage_sizes(side))


def dlib_resnet_v1(input_shape=(INPUT_SIZE, INPUT_SIZE, 3), input_mean=DLIB_INPUT_MEAN, normalize=True,
                   name="dlib_resnet_v1"):
    """dlib's face-recognition ResNet: RGB pixels in [0, 255] of an aligned chip → a 128-d encoding.

    ``normalize=True`` ends with an L2 normalisation (layer ``l2_normalize``; the toolkit's encoder contract);
    ``False`` outputs dlib's raw descriptor (layer ``descriptor``). ``input_mean`` is the per-channel average
    subtracted before dividing by 256 (dlib's input layer). About 5.6 M weights.
    """
    if (len(input_shape) != 3 or input_shape[-1] != 3
            or any(not isinstance(s, int) or s < MIN_INPUT_SIDE for s in input_shape[:2])):
        raise UsageError(f"`input_shape` must be (height, width, 3) with integer sides ≥ {MIN_INPUT_SIDE}. "
                         f"Received `input_shape={input_shape!r}`")
    if len(input_mean) != 3:
        raise UsageError(f"`input_mean` must hold three values (R, G, B). Received `input_mean={input_mean!r}`")
    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    x = ChannelNormalize(input_mean, (DLIB_INPUT_SCALE,) * 3, name="normalize")(inputs)
    x = layers.Conv2D(STEM_FILTERS, STEM_KERNEL, strides=2, padding="valid", name="stem_conv")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="stem_pool")(x)
    for block_name, filters, stride in _blocks():
        x = _residual_block(x, filters, stride, block_name)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(DESCRIPTOR_DIM, use_bias=False, name="descriptor")(x)
    if normalize:
        outputs = layers.UnitNormalization(axis=-1, name="l2_normalize")(outputs)
    return keras.Model(inputs, outputs, name=name)


# --- conversion ---------------------------------------------------------------------------------------------------


def _expect(layer: DlibLayer, ok: bool, what: str, path: str) -> None:
    if not ok:
        raise WeightsError(f"{path}: the {layer.kind} layer at byte {layer.offset} does not match dlib_resnet_v1: {what}")


def _folded_conv(con: DlibLayer, affine: DlibLayer, filters: int, kernel: int, stride: int, path: str):
    """Keras (kernel, bias) of con followed by affine: (W·γ, b·γ + β), W from dlib's (n, k, nr, nc) to (nr, nc, k, n)."""
    fields = con.fields
    padding = kernel // 2 if stride == 1 else 0
    _expect(con, fields["filters"].shape[0] == filters and fields["filters"].shape[2:] == (kernel, kernel),
            f"filters {fields['filters'].shape}, expected {filters} of {kernel}×{kernel}", path)
    _expect(con, fields["stride"] == (stride, stride) and fields["padding"] == (padding, padding) and not fields["relu"],
            f"stride {fields['stride']}, padding {fields['padding']}, expected {stride} and {padding}", path)
    _expect(affine, affine.fields["mode"] == CONV_MODE and not affine.fields["disabled"],
            "expected a per-channel (CONV_MODE), enabled affine layer", path)
    gamma, beta = affine.fields["gamma"], affine.fields["beta"]
    _expect(affine, gamma.shape == (filters,), f"{gamma.shape[0]} channels, expected {filters}", path)
    bias = fields["biases"] if fields["biases"] is not None else np.zeros(filters, np.float32)
    kernel_values = fields["filters"].transpose(2, 3, 1, 0) * gamma
    return [kernel_values.astype(np.float32), (bias * gamma + beta).astype(np.float32)]


def _check_parameterless_layers(layers_from_input: list[DlibLayer], path: str) -> None:
    """ReLUs enabled, the stem pool 3×3/2 and the shortcut pools 2×2/2 without padding, a global pool at the end."""
    windows = {"max_pool": (3, 3), "avg_pool": (2, 2)}
    for layer in layers_from_input[:-2]:
        if layer.kind == "relu":
            _expect(layer, not layer.fields["disabled"], "a disabled relu", path)
        if layer.kind in windows:
            fields = layer.fields
            _expect(layer, (fields["size"], fields["stride"], fields["padding"]) == (windows[layer.kind], (2, 2), (0, 0)),
                    f"{fields}, expected a {windows[layer.kind]} window, stride 2, no padding", path)
    _expect(layers_from_input[-2], layers_from_input[-2].fields["everything"], "expected avg_pool_everything", path)


def convert_dlib_resnet(path: str | os.PathLike, normalize: bool = True):
    """Read ``dlib_face_recognition_resnet_model_v1.dat`` and return :func:`dlib_resnet_v1` with its weights."""
    path = str(path)
    net = read_dnn(path, dlib_layer_kinds())
    _expect(net.input, tuple(net.input.fields["size"]) == (INPUT_SIZE, INPUT_SIZE),
            f"input {net.input.fields['size']}, expected {INPUT_SIZE}×{INPUT_SIZE}", path)
    layers_from_input = net.layers
    _check_parameterless_layers(layers_from_input, path)
    model = dlib_resnet_v1(input_mean=net.input.fields["mean"], normalize=normalize)
    specs = [(STEM_FILTERS, STEM_KERNEL, 2)]
    for _, filters, stride in _blocks():
        specs += [(filters, 3, stride), (filters, 3, 1)]
    cons = [i for i, layer in enumerate(layers_from_input) if layer.kind == "con"]
    for name, index, (filters, kernel, stride) in zip(conv_layer_names(), cons, specs, strict=True):
        values = _folded_conv(layers_from_input[index], layers_from_input[index + 1], filters, kernel, stride, path)
        model.get_layer(name).set_weights(values)
    fc = layers_from_input[-1]
    _expect(fc, fc.fields["biases"] is None and fc.fields["weights"].shape == (STAGES[-1][0], DESCRIPTOR_DIM),
            f"weights {fc.fields['weights'].shape}, expected a {STAGES[-1][0]}×{DESCRIPTOR_DIM} fc_no_bias", path)
    model.get_layer("descriptor").set_weights([fc.fields["weights"]])
    return model


__all__ = ["dlib_resnet_v1", "convert_dlib_resnet", "dlib_add_prev", "dlib_layer_kinds", "conv_layer_names", "stage_sizes",
           "CHIP_TEMPLATE_150"]
