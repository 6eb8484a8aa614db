"""One builder per darknet cfg section: the Keras layers and the weights each darknet layer reads.

Supported sections: ``[net]``, ``[convolutional]``, ``[maxpool]``, ``[route]``, ``[shortcut]``, ``[upsample]``,
``[reorg]``, ``[region]`` (YOLOv2) and ``[yolo]`` (YOLOv3/v4). Anything else, and any key that may change what a
layer computes, is refused with one :class:`~visionkit.core.errors.ModelError` naming the cfg line. File reading is in
:mod:`visionkit.convert.darknet_cfg`. Semantics, each from the darknet C sources (public domain; pjreddie/darknet
and AlexeyAB/darknet, which adds ``mish``/``swish``, route groups and ``scale_x_y``):

- ``[convolutional]`` (``src/parser.c`` ``parse_convolutional``, ``load_convolutional_weights``): pads ``size // 2``
  on every side when ``pad=1`` (else ``padding``); weights are biases, then with ``batch_normalize=1`` scales,
  rolling means, rolling variances, then the kernel as (filters, channels / groups, size, size). Batch norm is
  folded into the kernel as ``(x - mean) / (sqrt(var) + 1e-6) * scale + bias`` (pjreddie ``src/blas.c``
  ``normalize_cpu``; AlexeyAB's uses ``sqrt(var + 1e-5)``, OpenCV ``sqrt(var + 1e-6)``. On YOLOv3-tiny, whose
  smallest rolling variance is 0.013, the three differ by at most 3.7e-4 relative per channel (AlexeyAB) and
  2.9e-5 (OpenCV).
- activations (``src/activations.h``/``.c``): ``leaky`` 0.1 x for x < 0, ``relu``, ``logistic``, ``linear``,
  ``mish`` x·tanh(softplus(x)), ``swish`` x·σ(x). A convolution's default activation is ``logistic``.
- ``[maxpool]`` (``src/maxpool_layer.c``): ``stride`` default 1, ``size`` default ``stride``, ``padding`` default
  ``size - 1``; output ``(w + padding - size) / stride + 1``, window offset ``-padding / 2``, padding never wins.
  Stride 1 with size 2 keeps the size by padding one row/column after (YOLOv2-tiny, YOLOv3-tiny); YOLOv4's SPP
  uses size 5/9/13 stride 1.
- ``[route]`` (``src/route_layer.c``): ``layers`` are relative (negative) or absolute layer indices, concatenated
  on channels; with ``groups``/``group_id`` (YOLOv4-tiny) each input contributes its ``group_id``-th channel slice.
- ``[shortcut]`` (``src/shortcut_layer.c``): the previous output plus the ``from`` layers' outputs, then
  ``activation`` (default linear). Weighted shortcuts (``weights_type``) read extra weights: refused.
- ``[upsample]`` (``src/upsample_layer.c``): nearest neighbour, factor ``stride`` (default 2).
- ``[reorg]``: darknet's own permutation (not ``tf.nn.space_to_depth``: see :class:`DarknetReorg`).
- ``[region]`` (YOLOv2): anchors in grid cells, softmax classes. ``[yolo]`` (``src/yolo_layer.c``): ``anchors``
  in input pixels, the ones listed in ``mask`` belong to this head, logistic classes, ``scale_x_y``.

Inputs are RGB pixels in [0, 255] (divided by 255 inside the model, as darknet feeds [0, 1]); the custom layers
are in :mod:`visionkit.convert.darknet`. The output
contract (one tensor for ``[region]``, a list of head tensors for ``[yolo]``) is described in
:mod:`visionkit.detection.decode`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
from keras import layers

from visionkit.convert.darknet_layers import DarknetChannelGroup, DarknetMaxPool, DarknetReorg
from visionkit.convert.darknet_cfg import Section, WeightsReader
from visionkit.core.errors import ModelError

BN_EPSILON = 1e-6


@dataclass
class DarknetModel:
    """The converted model and what decoding needs (see :mod:`visionkit.detection.decode`).

    ``anchors``: YOLOv2 (``[region]``) anchors as fractions of the input; ``heads``: one dict per ``[yolo]``
    section (``anchors`` as fractions of the input, ``stride``, ``grid``, ``scale_x_y``); ``trailing_bytes``: bytes
    after the last value the cfg uses (darknet ignores them); ``values``: float32 values the cfg reads.
    """

    model: keras.Model
    anchors: list = field(default_factory=list)
    heads: list = field(default_factory=list)
    num_classes: int = 0
    class_activation: str = "softmax"
    header: tuple = ()
    trailing_bytes: int = 0
    values: int = 0

    def detector_options(self) -> dict:
        """What the registry / the ``.json`` sidecar record so that a loader can decode the output."""
        if self.heads:
            return {"heads": self.heads, "num_classes": self.num_classes, "class_activation": self.class_activation}
        return {"anchors": self.anchors, "num_classes": self.num_classes}


@dataclass
class _Net:
    """What the section builders share: the reader, every layer's output, the heads found so far."""

    reader: WeightsReader
    width: int
    height: int
    outputs: list = field(default_factory=list)
    head_tensors: list = field(default_factory=list)
    result: DarknetModel = field(default_factory=lambda: DarknetModel(model=None))

    def layer(self, ref: int, index: int, section: Section, key: str):
        """The output of layer ``ref`` (negative: relative to ``index``), as darknet's parser resolves it."""
        absolute = ref if ref >= 0 else index + ref
        if not 0 <= absolute < index:
            named = f"{ref} (= {absolute})" if ref < 0 else f"{ref}"
            raise ModelError(f"{section.where(key)} {key}= refers to layer {named}, but layer {index} can only use "
                             f"layers 0-{index - 1}")
        if self.outputs[absolute] is None:
            raise ModelError(f"{section.where(key)} {key}= refers to layer {absolute}, a detection head; only "
                             f"feature layers can be routed")
        return self.outputs[absolute]


def _activation(x, section: Section, index: int, default: str):
    name = section.text("activation", default)
    if name == "linear":
        return x
    made = {"leaky": lambda: layers.LeakyReLU(0.1, name=f"leaky_{index}"),
            "relu": lambda: layers.ReLU(name=f"relu_{index}"),
            "logistic": lambda: layers.Activation("sigmoid", name=f"logistic_{index}"),
            "mish": lambda: layers.Activation("mish", name=f"mish_{index}"),
            "swish": lambda: layers.Activation("silu", name=f"swish_{index}")}
    if name not in made:
        raise ModelError(f"{section.where('activation')} activation={name} is not supported "
                         f"({', '.join(['linear', *made])})")
    return made[name]()(x)


def _same_stride(section: Section, stride: int) -> None:
    for key in ("stride_x", "stride_y"):
        if section.has(key) and section.integer(key) != stride:
            raise ModelError(f"{section.where(key)} {key}={section.options[key]} differs from stride={stride}: "
                             f"unequal strides are not supported")


def _convolutional(x, section: Section, index: int, net: _Net):
    filters, size = section.integer("filters", 1), section.integer("size", 1)
    stride, groups = section.integer("stride", 1), section.integer("groups", 1)
    _same_stride(section, stride)
    padding = size // 2 if section.integer("pad", 0) else section.integer("padding", 0)
    section.used.add("padding")
    if size > 1:
        section.require("dilation", 1)
    section.used.add("dilation")  # darknet ignores dilation for 1x1 kernels
    for key in ("flipped", "binary", "xnor", "bin_output", "antialiasing", "sway", "rotate", "stretch",
                "stretch_sway", "coordconv", "dontload", "dontloadscales"):
        section.require(key, 0)
    normalize = section.integer("batch_normalize", 0)
    if normalize not in (0, 1):
        raise ModelError(f"{section.where('batch_normalize')} batch_normalize={normalize} is not supported (0 or 1)")
    channels = x.shape[-1]
    if channels % groups or filters % groups:
        raise ModelError(f"{section.where('groups')} groups={groups} must divide the {channels} input channels and "
                         f"filters={filters}")
    what = f"layer {index} ({section.where()})"
    biases = net.reader.take(filters, f"the biases of {what}")
    if normalize:
        scales, mean, variance = (net.reader.take(filters, f"the batch norm of {what}") for _ in range(3))
    kernel = net.reader.take(filters * channels // groups * size * size, f"the kernel of {what}")
    if padding:
        x = layers.ZeroPadding2D(padding, name=f"pad_{index}")(x)
    conv = layers.Conv2D(filters, size, stride, "valid", groups=groups, name=f"conv_{index}")
    x = conv(x)
    if kernel is not None:
        factor = np.ones(filters, dtype=np.float64)
        if normalize:
            factor = scales / (np.sqrt(variance.astype(np.float64)) + BN_EPSILON)
            biases = biases - mean * factor
        kernel = kernel.reshape(filters, channels // groups, size, size) * factor[:, None, None, None]
        conv.set_weights([kernel.transpose(2, 3, 1, 0).astype(np.float32), np.asarray(biases, np.float32)])
    return _activation(x, section, index, "logistic")


def _maxpool(x, section: Section, index: int, net: _Net):
    stride = section.integer("stride", 1)
    _same_stride(section, stride)
    size = section.integer("size", stride)
    padding = section.integer("padding", size - 1)
    for key in ("maxpool_depth", "antialiasing", "maxpool_zero_nonmax"):
        section.require(key, 0)
    section.used.add("out_channels")  # only read with maxpool_depth
    return DarknetMaxPool(size, stride, padding, name=f"maxpool_{index}")(x)


def _route(x, section: Section, index: int, net: _Net):
    sources = [net.layer(ref, index, section, "layers") for ref in section.integers("layers")]
    groups, group_id = section.integer("groups", 1), section.integer("group_id", 0)
    if len({tuple(s.shape[1:3]) for s in sources}) > 1:
        raise ModelError(f"{section.where('layers')} joins layers of different sizes "
                         f"{[tuple(s.shape[1:3]) for s in sources]}")
    if groups > 1:
        if not 0 <= group_id < groups or any(s.shape[-1] % groups for s in sources):
            raise ModelError(f"{section.where('groups')} groups={groups}, group_id={group_id} must split the "
                             f"channels {[s.shape[-1] for s in sources]} evenly")
        sources = [DarknetChannelGroup(groups, group_id, name=f"route_{index}_group{k}")(s)
                   for k, s in enumerate(sources)]
    return sources[0] if len(sources) == 1 else layers.Concatenate(name=f"route_{index}")(sources)


def _shortcut(x, section: Section, index: int, net: _Net):
    sources = [net.layer(ref, index, section, "from") for ref in section.integers("from")]
    for key in ("weights_type", "weights_normalization"):
        value = section.text(key, "none")
        if value != "none":
            raise ModelError(f"{section.where(key)} {key}={value} is not supported: only plain shortcuts "
                             f"(weights_type=none) can be imported")
    section.require("alpha", 1)
    section.require("beta", 1)
    for source in sources:
        if tuple(source.shape[1:]) != tuple(x.shape[1:]):
            raise ModelError(f"{section.where('from')} adds a {tuple(source.shape[1:])} layer to a "
                             f"{tuple(x.shape[1:])} one; only equal shapes are supported")
    return _activation(layers.Add(name=f"shortcut_{index}")([x, *sources]), section, index, "linear")


def _upsample(x, section: Section, index: int, net: _Net):
    stride = section.integer("stride", 2)
    if stride < 1:
        raise ModelError(f"{section.where('stride')} stride={stride} (downsampling) is not supported")
    section.require("scale", 1)
    return layers.UpSampling2D(stride, interpolation="nearest", name=f"upsample_{index}")(x)


def _reorg(x, section: Section, index: int, net: _Net):
    for key in ("reverse", "flatten", "extra"):
        section.require(key, 0)
    return DarknetReorg(section.integer("stride", 2), name=f"reorg_{index}")(x)


def _region(x, section: Section, index: int, net: _Net):
    count, classes = section.integer("num", 1), section.integer("classes", 20)
    section.require("coords", 4)
    if section.integer("softmax", 0) != 1:
        raise ModelError(f"{section.where('softmax')} only softmax=1 class scores are supported")
    biases = section.numbers("anchors")
    if len(biases) != 2 * count or x.shape[-1] != count * (5 + classes):
        raise ModelError(f"{section.where()} needs {count} anchor pairs and {count * (5 + classes)} input "
                         f"channels, found {len(biases) // 2} pairs and {x.shape[-1]} channels")
    rows, cols = x.shape[1], x.shape[2]
    net.result.anchors = [[biases[2 * i] / cols, biases[2 * i + 1] / rows] for i in range(count)]
    net.result.num_classes, net.result.class_activation = classes, "softmax"
    net.head_tensors.append(layers.Reshape((rows, cols, count, 5 + classes), name="region")(x))
    return None


def _yolo(x, section: Section, index: int, net: _Net):
    classes, total = section.integer("classes", 20), section.integer("num", 1)
    mask = section.integers("mask") if section.has("mask") else list(range(total))
    biases = section.numbers("anchors")
    if len(biases) < 2 * total or any(not 0 <= m < total for m in mask):
        raise ModelError(f"{section.where('anchors')} num={total} needs {2 * total} anchor values and mask indices "
                         f"below {total}; found {len(biases)} values and mask {mask}")
    section.require("new_coords", 0, "scaled-YOLOv4 box decoding")
    if net.result.heads and classes != net.result.num_classes:
        raise ModelError(f"{section.where('classes')} classes={classes}, but an earlier [yolo] has "
                         f"{net.result.num_classes}")
    rows, cols = x.shape[1], x.shape[2]
    if x.shape[-1] != len(mask) * (5 + classes):
        raise ModelError(f"{section.where()} needs {len(mask)} x (5 + {classes}) = {len(mask) * (5 + classes)} input "
                         f"channels (filters= of the layer before), found {x.shape[-1]}")
    net.result.heads.append({
        "anchors": [[biases[2 * m] / net.width, biases[2 * m + 1] / net.height] for m in mask],
        "anchors_px": [[biases[2 * m], biases[2 * m + 1]] for m in mask],
        "stride": net.height // rows, "grid": [rows, cols], "scale_x_y": section.number("scale_x_y", 1.0)})
    net.result.num_classes, net.result.class_activation = classes, "logistic"
    net.head_tensors.append(layers.Reshape((rows, cols, len(mask), 5 + classes), name=f"yolo_{index}")(x))
    return None


#: section kind -> (builder, keys read by darknet that steer training only and are ignored here).
SECTIONS = {
    "convolutional": (_convolutional, frozenset({"angle", "grad_centr", "assisted_excitation"})),
    "maxpool": (_maxpool, frozenset()),
    "route": (_route, frozenset()),
    "shortcut": (_shortcut, frozenset()),
    "upsample": (_upsample, frozenset()),
    "reorg": (_reorg, frozenset()),
    "region": (_region, frozenset({"jitter", "rescore", "object_scale", "noobject_scale", "class_scale",
                                   "coord_scale", "thresh", "random", "bias_match", "absolute", "max"})),
    "yolo": (_yolo, frozenset({"jitter", "ignore_thresh", "truth_thresh", "iou_thresh", "random", "resize", "max",
                               "max_delta", "counters_per_class", "label_smooth_eps", "objectness_smooth",
                               "iou_normalizer", "obj_normalizer", "cls_normalizer", "delta_normalizer", "iou_loss",
                               "iou_thresh_kind", "beta_nms", "nms_kind", "focal_loss", "show_details", "thresh",
                               "track_history_size", "sim_thresh", "dets_for_track", "dets_for_show",
                               "track_ciou_norm"})),
}


def build_model(sections: list[Section], reader: WeightsReader, name: str) -> DarknetModel:
    """The Keras model for parsed cfg ``sections``, each layer taking its weights from ``reader`` in cfg order."""
    net_options = sections[0]
    net = _Net(reader, net_options.integer("width"), net_options.integer("height"))
    inputs = keras.Input((net.height, net.width, net_options.integer("channels", 3)), name="pixels")
    x = layers.Rescaling(1 / 255.0, name="to_unit")(inputs)
    for index, section in enumerate(sections[1:]):
        if section.kind not in SECTIONS:
            raise ModelError(f"{section.where()} (layer {index}): darknet section [{section.kind}] is not supported "
                             f"({', '.join(f'[{k}]' for k in SECTIONS)})")
        builder, ignored = SECTIONS[section.kind]
        if x is None and section.kind not in ("route",):
            raise ModelError(f"{section.where()} (layer {index}) follows a detection head; only [route] may")
        x = builder(x, section, index, net)
        section.check_all_used(ignored)
        net.outputs.append(x)
    result = net.result
    if not net.head_tensors:
        raise ModelError("no [yolo] or [region] section: only darknet detectors can be imported")
    if result.heads and result.anchors:
        raise ModelError("mixes [region] and [yolo] heads")
    outputs = net.head_tensors if result.heads else net.head_tensors[-1]
    result.model = keras.Model(inputs, outputs, name=name)
    result.header, result.trailing_bytes, result.values = reader.header, reader.trailing_bytes, reader.position
    return result


