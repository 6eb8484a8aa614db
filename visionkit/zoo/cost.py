"""The computational cost of convolutional networks: output sizes, parameters and multiply-adds.

Counting convention (one place, used by ``visionkit models summary`` and ``visionkit models cost``):

* A MAC is one multiply-accumulate (a multiply and an add). For a convolution the course's
  "number of multiplies" and its MACs are the same number: every output value needs
  ``f·f·c_in`` multiplies. A "FLOP" count as in the ResNet paper (He et al. 2016, Table 1:
  ResNet-50 3.8×10⁹ FLOPs) is the same multiply-add count; some tools report 2× that.
* Counted: the kernels of Conv1D/Conv2D/Conv3D (grouped too), Conv2DTranspose,
  DepthwiseConv2D, SeparableConv2D and Dense layers.
* Not counted: biases, batch normalisation, activations, pooling, element-wise adds and
  multiplies, rescaling, padding and concatenation (together well under 1 % for the
  classic networks).
* A layer called several times (a shared layer) is counted for its first call only.

The output-size formula ⌊(n + 2p − f)/s⌋ + 1 lives in :func:`conv_output_size` alone; every
other function here (and the zoo builders' explicit padding) goes through it.
This module imports no TensorFlow; the Keras-model functions take a model you already built.
"""

from __future__ import annotations

import math
from typing import Sequence

from visionkit.core.errors import UsageError
from visionkit.zoo.config import (EXAMPLE_BOTTLENECK, EXAMPLE_FILTER_SIZE, EXAMPLE_FILTERS,  # noqa: F401
                                  EXAMPLE_INPUT_SHAPE, EXAMPLE_PADDING, EXAMPLE_STRIDE)
from visionkit.zoo.results import BottleneckComparison, ConvCost, LayerCost, ModelSummary


def same_padding(n: int, f: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """Zero rows added (before, after) by "same" padding, as TensorFlow/Keras do it.

    The total is whatever makes the output ⌈n/s⌉ long; the odd extra row goes after (bottom/right).
    With stride 1 and odd ``f`` this is the course's p = (f − 1)/2 on each side.
    """
    _check_positive(n=n, f=f, stride=stride, dilation=dilation)
    span = dilation * (f - 1) + 1
    total = max((math.ceil(n / stride) - 1) * stride + span - n, 0)
    return total // 2, total - total // 2


def conv_output_size(n: int, f: int, stride: int = 1, padding: int | str | tuple[int, int] = 0,
                     dilation: int = 1) -> int:
    """Output length ⌊(n + 2p − f)/s⌋ + 1 of a convolution or pooling window along one axis.

    ``padding`` is p (zeros on each side), a (before, after) pair, ``"valid"`` (p = 0) or ``"same"``
    (TensorFlow's rule, see :func:`same_padding`). A dilated kernel spans d·(f − 1) + 1 inputs.
    """
    _check_positive(n=n, f=f, stride=stride, dilation=dilation)
    if isinstance(padding, str):
        if padding.lower() == "valid":
            pad_total = 0
        elif padding.lower() == "same":
            pad_total = sum(same_padding(n, f, stride, dilation))
        else:
            raise UsageError(f"padding must be 'same', 'valid' or a number of pixels; received {padding!r}")
    elif isinstance(padding, (tuple, list)):
        pad_total = int(padding[0]) + int(padding[1])
    else:
        pad_total = 2 * int(padding)
    if pad_total < 0:
        raise UsageError(f"padding must not be negative; received {padding!r}")
    span = dilation * (f - 1) + 1
    size = (n + pad_total - span) // stride + 1
    if size < 1:
        raise UsageError(
            f"a {f}×{f} window with stride {stride} and padding {padding!r} does not fit an input of {n} pixels "
            f"(output would be {size}); use a larger input or more padding"
        )
    return size


def conv_params(f: int, c_in: int, filters: int, use_bias: bool = True, groups: int = 1) -> int:
    """Trainable parameters of a 2-D convolution: f·f·(c_in/groups)·filters weights (+ one bias per filter)."""
    _check_positive(f=f, c_in=c_in, filters=filters, groups=groups)
    if c_in % groups or filters % groups:
        raise UsageError(f"channels ({c_in} in, {filters} out) must divide by groups={groups}")
    return f * f * (c_in // groups) * filters + (filters if use_bias else 0)


def conv_cost(input_shape: Sequence[int] = EXAMPLE_INPUT_SHAPE, filter_size: int = EXAMPLE_FILTER_SIZE,
              filters: int = EXAMPLE_FILTERS, stride: int = EXAMPLE_STRIDE,
              padding: int | str = EXAMPLE_PADDING, label: str = "") -> ConvCost:
    """Output shape, parameters and multiplies of one conv layer on an (H, W, C) input.

    Multiplies = H_out · W_out · filters · (f · f · C): each output value is one f×f×C dot product.
    The defaults are the course's 28×28×192 → 5×5, 32-filter example: 120,422,400 multiplies.
    """
    height, width, channels = _shape3(input_shape)
    out_h = conv_output_size(height, filter_size, stride, padding)
    out_w = conv_output_size(width, filter_size, stride, padding)
    return ConvCost(
        label=label or f"{filter_size}x{filter_size} conv, {filters} filters",
        input_shape=(height, width, channels), output_shape=(out_h, out_w, filters),
        filter_size=filter_size, stride=stride, padding=str(padding), filters=filters,
        params=conv_params(filter_size, channels, filters),
        multiplies=out_h * out_w * filters * filter_size * filter_size * channels,
    )


def bottleneck_cost(input_shape: Sequence[int] = EXAMPLE_INPUT_SHAPE, filter_size: int = EXAMPLE_FILTER_SIZE,
                    filters: int = EXAMPLE_FILTERS, bottleneck: int = EXAMPLE_BOTTLENECK,
                    stride: int = EXAMPLE_STRIDE, padding: int | str = EXAMPLE_PADDING) -> BottleneckComparison:
    """The f×f conv straight on the input vs. a 1×1 conv down to ``bottleneck`` channels first.

    Szegedy et al. 2015 ("Going deeper with convolutions", Sec. 4): 1×1 convolutions "compute
    reductions before the expensive 3×3 and 5×5 convolutions". Course example: 120.4M vs 12.4M.
    """
    direct = conv_cost(input_shape, filter_size, filters, stride, padding,
                       label=f"{filter_size}x{filter_size} conv, {filters} filters (direct)")
    reduce = conv_cost(input_shape, 1, bottleneck, 1, 0, label=f"1x1 bottleneck to {bottleneck}")
    after = conv_cost(reduce.output_shape, filter_size, filters, stride, padding,
                      label=f"then {filter_size}x{filter_size} conv, {filters} filters")
    return BottleneckComparison(direct=direct, reduce=reduce, conv=after)


# --- Keras models -------------------------------------------------------------------------


def _spatial_out(in_dims, kernel, strides, padding, dilation) -> list[int] | None:
    if any(d is None for d in in_dims):
        return None
    return [conv_output_size(int(n), int(k), int(s), padding, int(d))
            for n, k, s, d in zip(in_dims, kernel, strides, dilation)]


def _split_channels(shape, config) -> tuple[list, int | None]:
    """(spatial dims, channels) of a batched shape, for channels_last or channels_first layers."""
    if config.get("data_format") == "channels_first":
        return list(shape[2:]), shape[1]
    return list(shape[1:-1]), shape[-1]


def layer_macs(layer, input_shape) -> int | None:
    """Multiply-adds of one call of ``layer`` (see the module's convention); None if a size is unknown.

    Conv output sizes are recomputed from the input with :func:`conv_output_size` rather than read
    from Keras, so the formula is exercised (and checked by the tests) on every network summarised.
    """
    import keras

    layers = keras.layers
    if isinstance(layer, (layers.DepthwiseConv1D, layers.DepthwiseConv2D, layers.SeparableConv1D,
                          layers.SeparableConv2D)):
        config = layer.get_config()
        in_dims, channels = _split_channels(input_shape, config)
        out_dims = _spatial_out(in_dims, config["kernel_size"], config["strides"], config["padding"],
                                config["dilation_rate"])
        if out_dims is None or channels is None:
            return None
        positions = math.prod(out_dims)
        depthwise = positions * channels * config["depth_multiplier"] * math.prod(config["kernel_size"])
        if isinstance(layer, (layers.SeparableConv1D, layers.SeparableConv2D)):
            return depthwise + positions * channels * config["depth_multiplier"] * config["filters"]
        return depthwise
    if isinstance(layer, (layers.Conv2DTranspose, layers.Conv1DTranspose, layers.Conv3DTranspose)):
        config = layer.get_config()
        if any(d is None for d in input_shape[1:]):
            return None
        # Every input value is scattered through the whole kernel into every output channel.
        kernel = math.prod(config["kernel_size"])
        return math.prod(input_shape[1:]) * kernel * config["filters"] // config.get("groups", 1)
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)):
        config = layer.get_config()
        in_dims, channels = _split_channels(input_shape, config)
        padding = config["padding"]
        if padding == "causal":  # Conv1D: all the padding on the left
            padding = (config["dilation_rate"][0] * (config["kernel_size"][0] - 1), 0)
        out_dims = _spatial_out(in_dims, config["kernel_size"], config["strides"], padding, config["dilation_rate"])
        if out_dims is None or channels is None:
            return None
        per_output = math.prod(config["kernel_size"]) * channels // config.get("groups", 1)
        return math.prod(out_dims) * config["filters"] * per_output
    if isinstance(layer, layers.Dense):
        if any(d is None for d in input_shape[1:]):
            return None
        return math.prod(input_shape[1:]) * layer.units
    if isinstance(layer, keras.Model):
        return summarize_model(layer).macs
    return 0


def _shapes(tensors):
    """Shapes of a tensor or a (nested) list of tensors, as tuples."""
    if isinstance(tensors, (list, tuple)):
        return [tuple(t.shape) for t in tensors]
    return tuple(tensors.shape)


def _first_shape(shapes):
    return shapes[0] if isinstance(shapes, list) else shapes


def summarize_model(model, name: str = "") -> ModelSummary:
    """One :class:`LayerCost` row per layer (name, type, output shape, parameters, MACs) and the totals."""
    rows = []
    for layer in _layers_with_input(model):
        try:
            in_shapes, out_shapes = _shapes(layer.input), _shapes(layer.output)
        except (AttributeError, ValueError):  # a layer never called in this graph
            in_shapes, out_shapes = None, None
        if layer.__class__.__name__ == "InputLayer":
            macs = 0
        else:
            macs = None if in_shapes is None else layer_macs(layer, _first_shape(in_shapes))
        rows.append(LayerCost(
            name=layer.name, type=layer.__class__.__name__,
            output_shape=_strip_batch(out_shapes), macs=macs,
            params=int(layer.count_params()) if layer.built else 0,
        ))
    trainable = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
    total = int(model.count_params())
    inputs = model.inputs if len(model.inputs) > 1 else model.inputs[0]
    return ModelSummary(
        model=name or model.name, input_shape=_strip_batch(_shapes(inputs)),
        layers=tuple(rows), params=total, trainable_params=trainable, non_trainable_params=total - trainable,
        macs=sum(row.macs or 0 for row in rows), macs_complete=all(row.macs is not None for row in rows),
    )


def _layers_with_input(model) -> list:
    """``model.layers``, with the InputLayer that Sequential models leave out put back first."""
    layers = list(model.layers)
    input_layer = getattr(getattr(model, "_functional", None), "layers", [None])[0]
    if input_layer is not None and input_layer.__class__.__name__ == "InputLayer" and input_layer not in layers:
        layers.insert(0, input_layer)
    return layers


def _strip_batch(shapes):
    if isinstance(shapes, list):
        return tuple(tuple(s[1:]) for s in shapes)
    return None if shapes is None else tuple(shapes[1:])


def _shape3(shape: Sequence[int]) -> tuple[int, int, int]:
    values = tuple(int(v) for v in shape)
    if len(values) != 3 or min(values) < 1:
        raise UsageError(f"input shape must be three positive numbers H,W,C; received {tuple(shape)!r}")
    return values  # type: ignore[return-value]


def _check_positive(**values: int) -> None:
    for key, value in values.items():
        if int(value) < 1:
            raise UsageError(f"{key} must be a positive whole number; received {value!r}")
