"""Read a serialised dlib DNN (``dlib::serialize(net)``, e.g. ``dlib_face_recognition_resnet_model_v1.dat``) into numpy.

No dlib and no code from the file: the bytes are decoded with the encodings of dlib's sources, and anything else is a
:class:`~visionkit.core.errors.WeightsError` naming the file and the byte offset.

Encodings (``dlib/serialize.h``, ``dlib/float_details.h``):

* **integer**: a control byte — bit 0x80 set for a negative signed value, low 4 bits the number of little-endian
  magnitude bytes that follow (1…sizeof(type); zero is ``01 00``); bits 0x70 are always clear;
* **floating point** (float and double alike): two integers, an int64 mantissa then an int16 exponent, the value
  being ``mantissa · 2**exponent`` (exponents 32000/32001/32002 mean +inf/-inf/NaN). The older ASCII encoding (its
  first byte has a bit of 0x70 set) is refused;
* **bool**: one ASCII byte, ``'1'`` or ``'0'``; **string**: an unsigned length, then the bytes;
* **tensor** (``dlib/cuda/tensor.h``): int version 2, four int64 dimensions num_samples × k × nr × nc, then that many
  little-endian IEEE float32 values, row-major; an **alias tensor** is int version 1 and the four dimensions only.

A network is one nested object whose *types* are not in the file (they are C++ template parameters), so the reader
is told the layer sequence, outermost first as in dlib's type expression (``loss_metric<fc_no_bias<...<input>>>``).
``dlib/dnn/core.h`` writes ``add_loss_layer`` as version 1, the loss details, the subnetwork; ``add_layer`` as version
(1–2), the subnetwork, then the layer's details, three bools, two tensors (x_grad, cached_output) and with version 2
the params_grad tensor; ``add_tag_layer`` and ``add_skip_layer`` as version 1 and the subnetwork; the innermost
``add_layer`` (whose subnetwork is the input layer) as version (2–3), the input layer's details, the layer's
details, three bools, three tensors and with version 3 an unsigned sample-expansion factor. The file is therefore all
the wrappers' versions (outside in), then the input layer, then each layer's details from the input outwards.

Layer details (``dlib/dnn/layers.h``, ``input.h``, ``loss.h``), each starting with its version string:
``con_4/5/6``, ``fc_2/3``, ``relu_/relu_2``, ``affine_/affine_2`` (and ``bn_con2``/``bn_fc2`` in an affine
position, folded at test time as dlib's ``affine_(const bn_&)`` does), ``max_pool_2``, ``avg_pool_2``,
``add_prev_``, ``input_rgb_image_sized``, ``loss_metric_/loss_metric_2``. The tag and skip *ids* are not stored.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from visionkit.core.errors import WeightsError

WRAPPERS = ("tag", "skip")
LAYER_KINDS = ("con", "fc", "relu", "affine", "max_pool", "avg_pool", "add_prev")
INPUT_KINDS = ("input_rgb_image_sized",)
LOSS_KINDS = ("loss_metric",)
CONV_MODE, FC_MODE = 0, 1  # dlib's layer_mode
FC_HAS_BIAS, FC_NO_BIAS = 0, 1  # dlib's fc_bias_mode
MAX_STRING = 1024  # dlib's version strings are ~20 characters
_SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


@dataclass
class DlibLayer:
    """One layer of a dlib network: its kind, the version string found, its fields, and where it starts."""

    kind: str
    version: str = ""
    fields: dict = field(default_factory=dict)
    offset: int = 0


@dataclass
class DlibNet:
    """A parsed network: the loss, the input layer, and the other layers from the input outwards."""

    loss: DlibLayer
    input: DlibLayer
    layers: list[DlibLayer]
    path: str = ""

    def kinds(self) -> list[str]:
        return [layer.kind for layer in self.layers]


class _Cursor:
    """Decoder of dlib's primitive encodings over the file's bytes; every failure names the file and offset."""

    def __init__(self, data: bytes, path: str):
        self.data, self.path, self.offset = memoryview(data), path, 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def fail(self, what: str, offset: int | None = None) -> WeightsError:
        at = self.offset if offset is None else offset
        return WeightsError(f"{self.path}: not a dlib DNN of the expected layout at byte {at}: {what}")

    def take(self, count: int, what: str) -> memoryview:
        if count > self.remaining:
            raise self.fail(f"the file ends inside {what} (needs {count} bytes, {self.remaining} left)")
        chunk = self.data[self.offset:self.offset + count]
        self.offset += count
        return chunk

    def integer(self, what: str, size: int = 8, signed: bool = True) -> int:
        start = self.offset
        control = self.take(1, what)[0]
        count, negative = control & 0x0F, bool(control & 0x80)
        if control & 0x70 or count == 0 or count > size or (negative and not signed):
            raise self.fail(f"byte 0x{control:02x} does not start an integer ({what})", start)
        value = int.from_bytes(self.take(count, what), "little")
        return -value if negative else value

    def unsigned(self, what: str, size: int = 8) -> int:
        return self.integer(what, size, signed=False)

    def real(self, what: str) -> float:
        start = self.offset
        if self.remaining and self.data[self.offset] & 0x70:
            raise self.fail(f"{what} is in dlib's old ASCII float encoding, which is not supported", start)
        mantissa = self.integer(f"{what} (mantissa)", 8)
        exponent = self.integer(f"{what} (exponent)", 2)
        if exponent in _SPECIAL_EXPONENTS:
            return _SPECIAL_EXPONENTS[exponent]
        try:
            return math.ldexp(float(mantissa), exponent)
        except OverflowError:
            raise self.fail(f"{what} = {mantissa}·2^{exponent} overflows a double", start) from None

    def boolean(self, what: str) -> bool:
        start = self.offset
        byte = bytes(self.take(1, what))
        if byte not in (b"0", b"1"):
            raise self.fail(f"{what} is not a bool ('0' or '1'), found {byte!r}", start)
        return byte == b"1"

    def string(self, what: str) -> str:
        start = self.offset
        length = self.unsigned(f"{what} (length)")
        if length > min(MAX_STRING, self.remaining):
            raise self.fail(f"{what} declares {length} characters ({self.remaining} bytes left)", start)
        raw = bytes(self.take(length, what))
        if not all(32 <= b < 127 for b in raw):
            raise self.fail(f"{what} is not a printable ASCII string: {raw[:40]!r}", start)
        return raw.decode("ascii")

    def version(self, what: str, allowed: Sequence[int]) -> int:
        start = self.offset
        value = self.integer(f"{what} version", 4)
        if value not in allowed:
            raise self.fail(f"{what} has version {value}, expected {' or '.join(map(str, allowed))}", start)
        return value

    def _dimensions(self, what: str) -> tuple[int, int, int, int]:
        start = self.offset
        dims = tuple(self.integer(f"{what} dimension", 8) for _ in range(4))
        if min(dims) < 0:
            raise self.fail(f"{what} has negative dimensions {dims}", start)
        if 4 * math.prod(max(d, 1) for d in dims) > len(self.data):  # even an empty tensor's shape must be sane
            raise self.fail(f"{what} declares dimensions {dims}, more floats than the whole file holds", start)
        return dims

    def tensor(self, what: str) -> np.ndarray:
        """A float32 array (num_samples, k, nr, nc); its size is checked against the bytes left before reading."""
        self.version(f"{what} tensor", (2,))
        start = self.offset
        dims = self._dimensions(what)
        count = math.prod(dims)
        if 4 * count > self.remaining:
            raise self.fail(f"{what} declares {dims[0]}×{dims[1]}×{dims[2]}×{dims[3]} floats ({4 * count} bytes) "
                            f"but only {self.remaining} bytes are left", start)
        values = np.frombuffer(self.take(4 * count, what), dtype="<f4", count=count)
        return values.astype(np.float32).reshape(dims)

    def alias_tensor(self, what: str) -> tuple[int, int, int, int]:
        self.version(f"{what} alias tensor", (1,))
        return self._dimensions(what)


def _check(cursor: _Cursor, ok: bool, what: str, start: int) -> None:
    if not ok:
        raise cursor.fail(what, start)


def _slice(cursor: _Cursor, params: np.ndarray, begin: int, shape: Sequence[int], what: str, start: int) -> np.ndarray:
    """``params`` (flat) from ``begin``, reshaped to ``shape`` — dlib's alias_tensor view."""
    flat = params.reshape(-1)
    count = math.prod(shape)
    _check(cursor, begin + count <= flat.size, f"{what} ({tuple(shape)}) does not fit in the {flat.size} parameters",
           start)
    return flat[begin:begin + count].reshape(shape)


def _con(cursor: _Cursor, version: str, start: int) -> dict:
    params = cursor.tensor("con_ params")
    num_filters = cursor.integer("con_ num_filters")
    nr, nc = cursor.integer("con_ nr"), cursor.integer("con_ nc")
    stride = (cursor.integer("con_ stride_y", 4), cursor.integer("con_ stride_x", 4))
    padding = (cursor.integer("con_ padding_y", 4), cursor.integer("con_ padding_x", 4))
    filters = cursor.alias_tensor("con_ filters")
    biases = cursor.alias_tensor("con_ biases")
    multipliers = [cursor.real("con_ learning-rate/weight-decay multiplier") for _ in range(4)]
    use_bias = cursor.boolean("con_ use_bias") if version in ("con_5", "con_6") else True
    use_relu = cursor.boolean("con_ use_relu") if version == "con_6" else False
    _check(cursor, filters[0] == num_filters and filters[2:] == (nr, nc),
           f"con_ filters {filters} disagree with num_filters={num_filters}, nr={nr}, nc={nc}", start)
    _check(cursor, min(stride) > 0 and 0 <= min(padding) and padding[0] < max(nr, 1) and padding[1] < max(nc, 1),
           f"con_ stride {stride} / padding {padding} are impossible", start)
    size = math.prod(filters)
    _check(cursor, params.size == size + (num_filters if use_bias else 0),
           f"con_ has {params.size} parameters, expected {size} filter values + biases", start)
    return {"filters": _slice(cursor, params, 0, filters, "con_ filters", start),
            "biases": _slice(cursor, params, size, (num_filters,), "con_ biases", start) if use_bias else None,
            "stride": stride, "padding": padding, "relu": use_relu, "multipliers": multipliers,
            "bias_alias": biases}


def _fc(cursor: _Cursor, version: str, start: int) -> dict:
    num_outputs, num_inputs = cursor.unsigned("fc_ num_outputs"), cursor.unsigned("fc_ num_inputs")
    params = cursor.tensor("fc_ params")
    weights = cursor.alias_tensor("fc_ weights")
    cursor.alias_tensor("fc_ biases")
    bias_mode = cursor.integer("fc_ bias_mode", 4)
    multipliers = [cursor.real("fc_ learning-rate/weight-decay multiplier") for _ in range(4)]
    use_bias = cursor.boolean("fc_ use_bias") if version == "fc_3" else True
    _check(cursor, bias_mode in (FC_HAS_BIAS, FC_NO_BIAS), f"fc_ bias_mode {bias_mode} is neither 0 nor 1", start)
    _check(cursor, weights[:2] == (num_inputs, num_outputs) and weights[2:] == (1, 1),
           f"fc_ weights {weights} disagree with {num_inputs} inputs × {num_outputs} outputs", start)
    has_bias = bias_mode == FC_HAS_BIAS and use_bias
    size = num_inputs * num_outputs
    _check(cursor, params.size == size + (num_outputs if has_bias else 0),
           f"fc_ has {params.size} parameters, expected {size}{' + biases' if has_bias else ''}", start)
    return {"weights": _slice(cursor, params, 0, (num_inputs, num_outputs), "fc_ weights", start),
            "biases": _slice(cursor, params, size, (num_outputs,), "fc_ biases", start) if has_bias else None,
            "multipliers": multipliers}


def _per_sample(shape: Sequence[int], mode: int) -> bool:
    """γ/β of one sample: (1, k, nr, nc) in FC_MODE, (1, k, 1, 1) in CONV_MODE."""
    return shape[0] == 1 and (mode == FC_MODE or tuple(shape[2:]) == (1, 1))


def _affine(cursor: _Cursor, version: str, start: int) -> dict:
    if version in ("bn_con2", "bn_fc2"):
        return _batch_norm_as_affine(cursor, version, start)
    params = cursor.tensor("affine_ params")
    gamma, beta = cursor.alias_tensor("affine_ gamma"), cursor.alias_tensor("affine_ beta")
    mode = cursor.integer("affine_ mode", 4)
    disabled = cursor.boolean("affine_ disabled") if version == "affine_2" else False
    _check(cursor, mode in (CONV_MODE, FC_MODE) and gamma == beta and _per_sample(gamma, mode),
           f"affine_ mode {mode}, gamma {gamma}, beta {beta}", start)
    size = math.prod(gamma)
    _check(cursor, disabled or params.size == 2 * size, f"affine_ has {params.size} parameters, expected {2 * size}",
           start)
    shape = gamma[1:] if mode == FC_MODE else (gamma[1],)
    return {"gamma": None if disabled else _slice(cursor, params, 0, shape, "affine_ gamma", start),
            "beta": None if disabled else _slice(cursor, params, size, shape, "affine_ beta", start),
            "mode": mode, "disabled": disabled}


def _batch_norm_as_affine(cursor: _Cursor, version: str, start: int) -> dict:
    """``bn_con2``/``bn_fc2`` read as dlib's affine_ reads them: γ/√(running var + ε) and β − that·running mean."""
    params = cursor.tensor("bn_ params")
    gamma, beta = cursor.alias_tensor("bn_ gamma"), cursor.alias_tensor("bn_ beta")
    cursor.tensor("bn_ means")
    cursor.tensor("bn_ invstds")
    running_means, running_variances = cursor.tensor("bn_ running_means"), cursor.tensor("bn_ running_variances")
    cursor.unsigned("bn_ num_updates")
    cursor.unsigned("bn_ running_stats_window_size")
    for _ in range(4):
        cursor.real("bn_ learning-rate/weight-decay multiplier")
    eps = cursor.real("bn_ eps")
    mode = CONV_MODE if version == "bn_con2" else FC_MODE
    size = math.prod(gamma)
    _check(cursor, gamma == beta and _per_sample(gamma, mode) and params.size == 2 * size
           and running_means.size == size == running_variances.size,
           f"bn_ shapes disagree: gamma {gamma}, {params.size} parameters, running stats {running_means.shape}", start)
    _check(cursor, eps > 0 and bool(np.all(running_variances + eps > 0)), "bn_ has a non-positive variance + eps", start)
    shape = gamma[1:] if mode == FC_MODE else (gamma[1],)
    scale = _slice(cursor, params, 0, shape, "bn_ gamma", start) / np.sqrt(running_variances.reshape(shape) + eps)
    shift = _slice(cursor, params, size, shape, "bn_ beta", start) - scale * running_means.reshape(shape)
    return {"gamma": scale.astype(np.float32), "beta": shift.astype(np.float32), "mode": mode, "disabled": False}


def _pool(cursor: _Cursor, version: str, start: int) -> dict:
    nr, nc = cursor.integer("pool nr"), cursor.integer("pool nc")
    stride = (cursor.integer("pool stride_y", 4), cursor.integer("pool stride_x", 4))
    padding = (cursor.integer("pool padding_y", 4), cursor.integer("pool padding_x", 4))
    _check(cursor, nr >= 0 and nc >= 0 and min(stride) > 0 and min(padding) >= 0,
           f"pool window {(nr, nc)}, stride {stride}, padding {padding} are impossible", start)
    return {"size": (nr, nc), "stride": stride, "padding": padding, "everything": nr == 0 and nc == 0}


def _relu(cursor: _Cursor, version: str, start: int) -> dict:
    return {"disabled": cursor.boolean("relu_ disabled") if version == "relu_2" else False}


def _nothing(cursor: _Cursor, version: str, start: int) -> dict:
    return {}


def _input_rgb(cursor: _Cursor, version: str, start: int) -> dict:
    mean = tuple(cursor.real(f"input avg_{colour}") for colour in ("red", "green", "blue"))
    size = (cursor.unsigned("input nr"), cursor.unsigned("input nc"))
    _check(cursor, all(np.isfinite(mean)) and 0 < min(size) and max(size) < 1 << 16,
           f"input mean {mean} / size {size} are impossible", start)
    return {"mean": mean, "size": size}


def _loss_metric(cursor: _Cursor, version: str, start: int) -> dict:
    if version == "loss_metric_":  # loss.h: the first version hard-coded these
        return {"margin": 0.1, "distance_threshold": 0.75}
    return {"margin": cursor.real("loss_metric_ margin"), "distance_threshold": cursor.real("loss_metric_ threshold")}


#: kind -> (accepted version strings, field reader).
_READERS = {
    "con": (("con_4", "con_5", "con_6"), _con),
    "fc": (("fc_2", "fc_3"), _fc),
    "relu": (("relu_", "relu_2"), _relu),
    "affine": (("affine_", "affine_2", "bn_con2", "bn_fc2"), _affine),
    "max_pool": (("max_pool_2",), _pool),
    "avg_pool": (("avg_pool_2",), _pool),
    "add_prev": (("add_prev_",), _nothing),
    "input_rgb_image_sized": (("input_rgb_image_sized",), _input_rgb),
    "loss_metric": (("loss_metric_", "loss_metric_2"), _loss_metric),
}


def _details(cursor: _Cursor, kind: str) -> DlibLayer:
    start = cursor.offset
    versions, reader = _READERS[kind]
    version = cursor.string(f"{kind} version string")
    if version not in versions:
        raise cursor.fail(f"expected a {kind} layer ({', '.join(versions)}), found {version!r}", start)
    return DlibLayer(kind, version, reader(cursor, version, start), start)


def _skip_state(cursor: _Cursor, kind: str, tensors: int) -> None:
    """The training state an add_layer stores after its details: three bools and ``tensors`` tensors."""
    for name in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"):
        cursor.boolean(f"{kind} {name}")
    for _ in range(tensors):
        cursor.tensor(f"{kind} training state")


def check_architecture(kinds: Sequence[str]) -> None:
    """A layer sequence (outermost first) is a loss, layers/tags/skips, a computational layer, an input layer."""
    kinds = list(kinds)
    problems = []
    if len(kinds) < 3 or kinds[0] not in LOSS_KINDS or kinds[-1] not in INPUT_KINDS:
        problems.append("it must start with a loss and end with an input layer")
    elif kinds[-2] not in LAYER_KINDS:
        problems.append("the layer on the input must be a computational layer")
    unknown = sorted(set(kinds[1:-1]) - set(LAYER_KINDS) - set(WRAPPERS))
    if unknown:
        problems.append(f"unknown kinds {unknown}")
    if problems:
        raise ValueError(f"not a dlib layer sequence ({'; '.join(problems)}): {kinds[:4]}…{kinds[-3:]}")


def parse_dnn(data: bytes, kinds: Sequence[str], path: str = "<bytes>") -> DlibNet:
    """Parse the serialised network ``data`` whose layer sequence (outermost first) is ``kinds``."""
    check_architecture(kinds)
    cursor = _Cursor(data, path)
    cursor.version("add_loss_layer", (1,))
    loss = _details(cursor, kinds[0])
    outer = kinds[1:-2]
    versions = [cursor.version(f"add_layer ({kind})", (1, 2) if kind in LAYER_KINDS else (1,)) for kind in outer]
    input_version = cursor.version(f"add_layer ({kinds[-2]} on the input)", (2, 3))
    input_layer = _details(cursor, kinds[-1])
    layers = [_details(cursor, kinds[-2])]
    _skip_state(cursor, kinds[-2], tensors=3)
    if input_version == 3:
        cursor.unsigned("sample_expansion_factor", 4)
    for kind, version in zip(reversed(outer), reversed(versions)):
        if kind in WRAPPERS:
            layers.append(DlibLayer(kind, offset=cursor.offset))
            continue
        layers.append(_details(cursor, kind))
        _skip_state(cursor, kind, tensors=3 if version == 2 else 2)
    if cursor.remaining:
        raise cursor.fail(f"{cursor.remaining} bytes follow the end of the network (a different architecture?)")
    return DlibNet(loss, input_layer, layers, path)


def read_dnn(path: str | os.PathLike, kinds: Sequence[str]) -> DlibNet:
    """Read the dlib network file at ``path``; see :func:`parse_dnn`."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise WeightsError(f"{path}: cannot read ({error.strerror or error})") from None
    return parse_dnn(data, kinds, str(path))


__all__ = ["DlibLayer", "DlibNet", "parse_dnn", "read_dnn", "check_architecture"]
