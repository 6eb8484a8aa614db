"""Darknet YOLOv2 / YOLOv2-tiny (``.cfg`` + ``.weights``) to a Keras detector that visionkit can run.

The cfg is an INI-like list of sections; supported: ``[net]``, ``[convolutional]``, ``[maxpool]``, ``[route]``,
``[reorg]`` and ``[region]`` (what YOLOv2 and YOLOv2-tiny use; YOLOv3's ``[yolo]``/``[shortcut]``/``[upsample]``
are refused with a clear message). The weights file is a header (major, minor, revision as int32, then the images
seen as int64 from format 0.2 on, else int32) followed by float32 arrays, per convolutional layer in order:
biases, then (with ``batch_normalize=1``) scales, rolling means and rolling variances, then the kernel as
(filters, channels, size, size). Everything must be used exactly once, else the cfg does not match the weights.

Semantics follow the darknet C sources (public domain), as YAD2K did for Keras 1: batch normalisation is
``(x - mean) / (sqrt(var) + 1e-6) * scale + bias`` (note: eps outside the root), folded here into the convolution;
``leaky`` is slope 0.1; convolutions pad ``size // 2`` on every side when ``pad=1``; max-pooling pads
``size - 1`` in all, ``(size - 1) // 2`` before, with -inf; ``[reorg]`` is darknet's own permutation (not
``tf.nn.space_to_depth``: see :class:`DarknetReorg`); ``[region]`` anchors are in grid cells. Inputs are RGB
pixels in [0, 255] (divided by 255 inside the model, as darknet feeds [0, 1]).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from visionkit.errors import ModelError, WeightsError

SUPPORTED = ("net", "network", "convolutional", "maxpool", "route", "reorg", "region")
BN_EPSILON = 1e-6


def parse_cfg(text: str) -> list[tuple[str, dict]]:
    """``[section]`` headers and ``key=value`` lines -> [(section, {key: value})] (comments: ``#`` and ``;``)."""
    sections: list[tuple[str, dict]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ModelError(f"cfg line {number}: malformed section header {raw.strip()!r}")
            sections.append((line[1:-1].strip().lower(), {}))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1][1][key.strip()] = value.strip()
        else:
            raise ModelError(f"cfg line {number}: expected [section] or key=value, found {raw.strip()!r}")
    if not sections or sections[0][0] not in ("net", "network"):
        raise ModelError("a darknet cfg starts with a [net] section (input width, height, channels)")
    return sections


def read_weights(path: str | os.PathLike) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """The header (major, minor, revision, seen) and the float32 values of a darknet ``.weights`` file."""
    data = Path(path).read_bytes()
    if len(data) < 16:
        raise WeightsError(f"{path}: too short for a darknet weights file ({len(data)} bytes)")
    major, minor, revision = np.frombuffer(data[:12], dtype="<i4")
    wide = (major * 10 + minor) >= 2 and major < 1000 and minor < 1000
    start = 20 if wide else 16
    seen = int(np.frombuffer(data[12:start], dtype="<i8" if wide else "<i4")[0])
    if (len(data) - start) % 4:
        raise WeightsError(f"{path}: {len(data) - start} bytes after the header is not a whole number of floats")
    return (int(major), int(minor), int(revision), seen), np.frombuffer(data[start:], dtype="<f4")


@keras.saving.register_keras_serializable(package="visionkit")
class DarknetReorg(keras.layers.Layer):
    """Darknet's ``[reorg]`` (``reorg_cpu`` with ``forward=0``), stride s: (H, W, C) -> (H/s, W/s, C·s²).

    In channel-first terms darknet reads the C x H x W input as if it were (C/s²) x (H·s) x (W·s) and writes
    ``out[(dy·s + dx)·C/s² + c, j, i] = in[c, j·s + dy, i·s + dx]`` into a buffer of C x H x W, which the next
    layer reads as (C·s²) x (H/s) x (W/s). It is a fixed permutation, done here with reshapes and transposes.
    """

    def __init__(self, stride: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, inputs):
        s = self.stride
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        batch = ops.shape(inputs)[0]
        x = ops.transpose(inputs, (0, 3, 1, 2))  # NCHW, as darknet stores it
        x = ops.reshape(x, (batch, channels // (s * s), height, s, width, s))  # seen as (C/s², H·s, W·s) rows
        x = ops.transpose(x, (0, 3, 5, 1, 2, 4))  # -> (dy, dx, c, j, i)
        x = ops.reshape(x, (batch, channels * s * s, height // s, width // s))  # the buffer, re-read
        return ops.transpose(x, (0, 2, 3, 1))

    def compute_output_shape(self, input_shape):
        s = self.stride
        return (input_shape[0], input_shape[1] // s, input_shape[2] // s, input_shape[3] * s * s)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="visionkit")
class DarknetMaxPool(keras.layers.Layer):
    """Darknet max-pooling: pad ``size - 1`` in all (``(size - 1) // 2`` before) with -inf, then a valid window."""

    def __init__(self, size: int = 2, stride: int = 2, padding: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.size, self.stride = int(size), int(stride)
        self.padding = self.size - 1 if padding is None else int(padding)

    def _pads(self, length: int) -> tuple[int, int, int]:
        before = self.padding // 2
        out = (length + self.padding - self.size) // self.stride + 1
        return before, max(0, (out - 1) * self.stride + self.size - length - before), out

    def call(self, inputs):
        top, bottom, _ = self._pads(inputs.shape[1])
        left, right, _ = self._pads(inputs.shape[2])
        x = ops.pad(inputs, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-np.inf)
        return ops.max_pool(x, self.size, self.stride, padding="valid")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._pads(input_shape[1])[2], self._pads(input_shape[2])[2], input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "stride": self.stride, "padding": self.padding}


@dataclass
class _Reader:
    values: np.ndarray
    position: int = 0
    path: str = ""

    def take(self, count: int, what: str) -> np.ndarray:
        if self.position + count > len(self.values):
            raise WeightsError(f"{self.path}: the weights end before {what} (the cfg does not match this file)")
        chunk = self.values[self.position:self.position + count]
        self.position += count
        return chunk


@dataclass
class DarknetModel:
    """The converted model and what the detector needs: anchors (fractions of the input), classes."""

    model: keras.Model
    anchors: list = field(default_factory=list)
    num_classes: int = 0
    header: tuple = ()


def _int(options: dict, key: str, default: int | None = None) -> int:
    if key not in options and default is None:
        raise ModelError(f"cfg section is missing {key}=")
    return int(float(options.get(key, default)))


def _convolutional(x, options: dict, index: int, reader: _Reader):
    filters, size = _int(options, "filters"), _int(options, "size", 1)
    stride, pad = _int(options, "stride", 1), _int(options, "pad", 0)
    padding = _int(options, "padding", 0) if not pad else size // 2
    channels = x.shape[-1]
    biases = reader.take(filters, f"layer {index} biases")
    if _int(options, "batch_normalize", 0):
        scales, mean, variance = (reader.take(filters, f"layer {index} batch norm") for _ in range(3))
        factor = scales / (np.sqrt(variance) + BN_EPSILON)
        biases = biases - mean * factor
    else:
        factor = np.ones(filters, dtype=np.float32)
    kernel = reader.take(filters * channels * size * size, f"layer {index} weights").reshape(filters, channels, size, size)
    kernel = (kernel * factor[:, None, None, None]).transpose(2, 3, 1, 0)
    if padding:
        x = layers.ZeroPadding2D(padding, name=f"pad_{index}")(x)
    conv = layers.Conv2D(filters, size, stride, "valid", name=f"conv_{index}")
    x = conv(x)
    conv.set_weights([kernel.astype(np.float32), biases.astype(np.float32)])
    activation = options.get("activation", "logistic")
    if activation == "leaky":
        return layers.LeakyReLU(0.1, name=f"leaky_{index}")(x)
    if activation == "relu":
        return layers.ReLU(name=f"relu_{index}")(x)
    if activation == "logistic":
        return layers.Activation("sigmoid", name=f"logistic_{index}")(x)
    if activation != "linear":
        raise ModelError(f"layer {index}: activation {activation!r} is not supported (leaky, relu, logistic, linear)")
    return x


def convert_darknet(cfg_path: str | os.PathLike, weights_path: str | os.PathLike) -> DarknetModel:
    """Build the Keras model a darknet YOLOv2 / YOLOv2-tiny cfg describes and load its weights."""
    sections = parse_cfg(Path(cfg_path).read_text(encoding="utf-8"))
    header, values = read_weights(weights_path)
    reader = _Reader(values, path=str(weights_path))
    net = sections[0][1]
    shape = (_int(net, "height"), _int(net, "width"), _int(net, "channels", 3))
    inputs = keras.Input(shape, name="pixels")
    x = layers.Rescaling(1 / 255.0, name="to_unit")(inputs)
    outputs: list = []
    result = DarknetModel(model=None, header=header)
    for index, (kind, options) in enumerate(sections[1:]):
        if kind not in SUPPORTED:
            raise ModelError(f"layer {index}: darknet section [{kind}] is not supported (YOLOv2 / YOLOv2-tiny use "
                             f"{', '.join(SUPPORTED[2:])})")
        if kind == "convolutional":
            x = _convolutional(x, options, index, reader)
        elif kind == "maxpool":
            stride = _int(options, "stride", 1)  # darknet's defaults: stride 1, size = stride, padding = size - 1
            size = _int(options, "size", stride)
            x = DarknetMaxPool(size, stride, _int(options, "padding", size - 1), name=f"maxpool_{index}")(x)
        elif kind == "route":
            refs = [int(v) for v in options["layers"].split(",")]
            sources = [outputs[r if r >= 0 else index + r] for r in refs]
            x = sources[0] if len(sources) == 1 else layers.Concatenate(name=f"route_{index}")(sources)
        elif kind == "reorg":
            x = DarknetReorg(_int(options, "stride", 2), name=f"reorg_{index}")(x)
        elif kind == "region":
            count, classes = _int(options, "num"), _int(options, "classes")
            biases = [float(v) for v in options["anchors"].split(",")]
            if len(biases) != 2 * count or x.shape[-1] != count * (5 + classes):
                raise ModelError(f"[region] needs {count} anchor pairs and {count * (5 + classes)} input channels, "
                                 f"found {len(biases) // 2} pairs and {x.shape[-1]} channels")
            rows, cols = x.shape[1], x.shape[2]
            result.anchors = [[biases[2 * i] / cols, biases[2 * i + 1] / rows] for i in range(count)]
            result.num_classes = classes
            x = layers.Reshape((rows, cols, count, 5 + classes), name="region")(x)
        outputs.append(x)
    if reader.position != len(values):
        raise WeightsError(f"{weights_path}: {len(values) - reader.position} weights left over after the last layer "
                           f"(the cfg does not match this file)")
    if not result.anchors:
        raise ModelError(f"{cfg_path}: no [region] section; only YOLOv2-style detectors can be imported")
    result.model = keras.Model(inputs, x, name=Path(cfg_path).stem)
    return result


def imported_path(name: str) -> Path:
    """Where ``visionkit models import-darknet`` keeps the detector called ``name``."""
    from visionkit.config import cache_dir

    return cache_dir() / "detectors" / f"{name}.keras"


def import_darknet(cfg_path: str | os.PathLike, weights_path: str | os.PathLike, name: str,
                   names: list[str] | None = None, output: str | os.PathLike | None = None) -> Path:
    """Convert a darknet detector and save it (``.keras`` + ``.json`` sidecar) for ``visionkit detect -m NAME``.

    ``names``: the class names (e.g. from ``coco.names``); default ``0 … C-1``. ``output``: another ``.keras`` path.
    """
    from visionkit.registry import ModelSpec
    from visionkit.weights import save_model

    if not name or any(c in name for c in "/\\ ") or name.startswith("."):
        raise ModelError(f"name {name!r} cannot be a file name; use letters, digits, '-' and '_'")
    converted = convert_darknet(cfg_path, weights_path)
    classes = list(names) if names else [str(i) for i in range(converted.num_classes)]
    if len(classes) != converted.num_classes:
        raise ModelError(f"{len(classes)} class names given for a detector of {converted.num_classes} classes")
    height, width = converted.model.input_shape[1:3]
    spec = ModelSpec(name=name, task="detect", builder="visionkit.convert.darknet:convert_darknet",
                     description=f"darknet {Path(cfg_path).name} + {Path(weights_path).name}", input_size=(height, width),
                     options={"anchors": converted.anchors, "num_classes": converted.num_classes})
    target = Path(output) if output else imported_path(name)
    save_model(converted.model, target, spec, classes, {"anchors": converted.anchors, "darknet_header": list(converted.header),
                                                        "cfg": str(cfg_path), "weights": str(weights_path)})
    return target


def registry_detector(spec) -> Path:
    """A darknet registry entry (``options.cfg_url`` + ``weights.url``) downloaded once and converted into the cache.

    The weights go through :func:`visionkit.weights.fetch` (hash checked, or recorded on first download);
    ``visionkit models fetch NAME`` downloads them ahead of time.
    """
    target = imported_path(spec.name)
    if target.is_file():
        return target
    from visionkit.weights import fetch, offline_message, weights_dir

    weights = fetch(spec)
    url = spec.options.get("cfg_url", "")
    try:
        cfg = keras.utils.get_file(f"{spec.name}.cfg", url, cache_dir=str(weights_dir().parent),
                                   cache_subdir=weights_dir().name)
    except Exception as error:  # get_file wraps every network failure in a plain Exception
        if isinstance(error, KeyboardInterrupt):
            raise
        raise WeightsError(offline_message(spec).replace(spec.weights.url, url)) from None
    return import_darknet(cfg, weights, spec.name, spec.class_names() or None)
