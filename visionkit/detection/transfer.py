"""Fine-tuning from a darknet YOLOv3/v4 detector (``detect train --from yolov3_tiny_coco``): resize, re-head, freeze.

The starting point is any detector of the multi-head contract (:mod:`visionkit.detection.decode`) built from a
darknet cfg: the bundled ``yolov3_tiny_coco``, an entry converted from the official weights (``yolov3_coco`` …),
a ``visionkit models import-darknet`` import, or an earlier run of this trainer.

- Input size: darknet's weights do not depend on it, so the cfg is rebuilt at the training size and the weights
  are copied by layer name. Anchors are kept as fractions of the input (the letterbox scales the photo to the
  input, so an object covering 30 % of the photo covers 30 % of any input size); darknet keeps them in pixels.
- Re-heading (Redmon & Farhadi 2018, §2.3: each scale predicts ``N × N × [B · (4 + 1 + C)]``): the last 1×1
  convolution before each ``[yolo]`` head is replaced by one with ``B_h · (5 + C')`` filters for the new classes,
  fed by the same features; its objectness bias starts at the focal-loss prior. With ``keep_classes`` the heads
  stay as they are and the data's classes are matched to the model's by name.
- Anchors: kept (the model's own, per head), or re-fit by k-means on the training boxes (``refit_anchors``) with
  as many anchors per head as before; the largest go to the coarsest grid, as in YOLOv3's cfgs.
- Freezing: darknet numbers its layers from 0 after ``[net]`` and the converted Keras layers keep that number
  (``conv_12``, ``leaky_12`` …). ``freeze=N`` freezes layers 0 … N−1 (darknet's ``partial`` / ``stopbackward``
  count); ``"backbone"`` the layers every head depends on (for YOLOv3-tiny 0-13); ``"all"`` everything but the
  heads' last convolutions; ``0`` or ``"none"`` nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionkit.core.errors import ModelError, UsageError
from visionkit.core.model import LoadedModel
from visionkit.detection.detector import is_multi_head
from visionkit.detection.config import FREEZE_WORDS

#: Prior probability of "an object here" the new heads' objectness bias starts at (Lin et al. 2017, §4.1).
OBJECTNESS_PRIOR = 0.01
_INDEX = re.compile(r"_(\d+)(?:_group\d+)?$")


@dataclass
class StartingPoint:
    """A darknet detector ready to train: the Keras model, its heads' metadata, and the names that matter."""

    model: object
    heads: list[dict]
    head_convs: list[str]  # the last convolution of each head, in output order
    shared: set[int]  # darknet layer indices every head depends on ("backbone")
    class_names: list[str]
    cfg: str  # as the source records it (relative to pretrained/ for a bundled cfg), for later rebuilding
    cfg_sha256: str = ""  # the cfg's sha256 as the source records it ("" where none was: older imports)


def parse_freeze(value) -> int | str:
    """``--freeze`` as given (an int, a digit string, ``none`` / ``backbone`` / ``all``) -> int or word."""
    text = str(value).strip().lower()
    if text.isdigit():
        return int(text)
    if text in FREEZE_WORDS:
        return 0 if text == "none" else text
    raise UsageError(f"--freeze takes a number of darknet layers or one of {', '.join(FREEZE_WORDS)}; "
                     f"received {value!r}")


def layer_index(name: str) -> int | None:
    """The darknet layer number a converted layer's name ends in (``conv_12`` -> 12), else None."""
    found = _INDEX.search(name)
    return int(found.group(1)) if found else None


def check_from_model(detector: LoadedModel, name: str) -> tuple[str, str]:
    """The cfg of a multi-head darknet detector and its recorded sha256 (a UsageError for anything else, a
    ModelError for a cfg that is not the one the detector was made from).

    The cfg is the registry entry's (``options``, relative to ``pretrained/``; also what a model fine-tuned from
    one records) or the import's (``extra``, an absolute path). A recorded sha256 is checked: a cfg edited since
    would rebuild a network its weights do not fit, or silently another one.
    """
    from visionkit.convert.darknet import cfg_path
    from visionkit.core.integrity import file_hash

    if not is_multi_head(detector):
        raise UsageError(f"--from {name}: fine-tuning starts from a darknet YOLOv3/v4 detector (one output per head, "
                         f"e.g. yolov3_tiny_coco); {name} is a YOLOv2-style detector")
    recorded = detector.spec.options if detector.spec.options.get("cfg") else detector.extra
    cfg, expected = recorded.get("cfg"), str(recorded.get("cfg_sha256") or "").lower()
    if not cfg:
        raise UsageError(f"--from {name}: no darknet cfg is recorded with this detector, so it cannot be rebuilt")
    path = cfg_path(cfg) if recorded is detector.spec.options else Path(cfg)
    if not path.is_file():
        raise UsageError(f"--from {name}: its darknet cfg {path} is missing")
    found = file_hash(path)
    if expected and found != expected:
        raise ModelError(f"--from {name}: its darknet cfg {path} has changed since the detector was made (sha256 "
                         f"{found[:12]}…, recorded {expected[:12]}…); restore that file, or import the detector "
                         f"again (visionkit models import-darknet)")
    return str(path), expected


def start_from(detector: LoadedModel, name: str, input_size: tuple[int, int], num_classes: int | None,
               head_anchors: list | None = None, seed: int = 0) -> StartingPoint:
    """The detector rebuilt at ``input_size`` with its weights, re-headed for ``num_classes`` (None: keep its
    heads and classes). ``head_anchors``: per head, (B_h, 2) fractions of the input (default: the model's)."""
    import keras

    from visionkit.convert.darknet import darknet_architecture
    from visionkit.core.model import copy_weights_by_name

    cfg, cfg_sha256 = check_from_model(detector, name)
    heads = [dict(h) for h in detector.extra["heads"]]
    if tuple(input_size) == tuple(detector.input_size):
        model = detector.model
    else:
        model = darknet_architecture(cfg, input_size).model
        copy_weights_by_name(detector.model, model)
    if head_anchors is not None:
        if [len(a) for a in head_anchors] != [len(h["anchors"]) for h in heads]:
            raise UsageError(f"anchors per head {[len(a) for a in head_anchors]} differ from the model's "
                             f"{[len(h['anchors']) for h in heads]}")
        for head, anchors in zip(heads, head_anchors):
            head["anchors"] = [[float(w), float(h)] for w, h in anchors]
    height, width = input_size
    outputs = model.outputs
    for head, output in zip(heads, outputs):
        head.update(grid=[int(output.shape[1]), int(output.shape[2])], stride=int(height // output.shape[1]),
                    anchors_px=[[round(w * width, 2), round(h * height, 2)] for w, h in head["anchors"]])
    convs = [_head_conv(output) for output in outputs]
    class_names = list(detector.class_names)
    if num_classes is not None:
        keras.utils.set_random_seed(seed)
        outputs = [_rehead(conv, output, len(head["anchors"]), num_classes)
                   for conv, output, head in zip(convs, outputs, heads)]
        model = keras.Model(model.inputs[0], outputs if len(outputs) > 1 else outputs[0], name=model.name)
        class_names = []
    shared = shared_layers(model)
    recorded = detector.spec.options.get("cfg") or cfg
    return StartingPoint(model, heads, [c.name for c in convs], shared, class_names, recorded, cfg_sha256)


def _head_conv(output):
    """The 1×1 convolution whose output a head's Reshape reads (darknet: the conv before ``[yolo]``)."""
    import keras

    reshape = output._keras_history.operation
    conv = reshape.input._keras_history.operation
    if not isinstance(conv, keras.layers.Conv2D) or tuple(conv.kernel_size) != (1, 1):
        raise UsageError(f"head {reshape.name}: expected a 1x1 convolution before it, found {conv.name}; "
                         f"re-heading needs darknet's [convolutional] size=1 activation=linear before [yolo]")
    return conv


def _rehead(conv, output, anchors: int, num_classes: int):
    """A new last convolution (same name, ``anchors · (5 + C)`` filters) and Reshape for ``num_classes``."""
    import keras

    per_anchor = 5 + num_classes
    bias = np.zeros(anchors * per_anchor, np.float32)
    bias[4::per_anchor] = math.log(OBJECTNESS_PRIOR / (1 - OBJECTNESS_PRIOR))
    new_conv = keras.layers.Conv2D(anchors * per_anchor, 1, name=conv.name,
                                   bias_initializer=keras.initializers.Constant(bias))
    reshape = output._keras_history.operation
    rows, cols = output.shape[1], output.shape[2]
    return keras.layers.Reshape((rows, cols, anchors, per_anchor), name=reshape.name)(new_conv(conv.input))


def shared_layers(model) -> set[int]:
    """Darknet indices of the layers every output depends on (the "backbone" of ``freeze``)."""
    import keras

    outputs = model.outputs
    found = None
    for output in outputs:
        needed = {layer_index(layer.name) for layer in keras.Model(model.inputs[0], output).layers}
        found = needed if found is None else found & needed
    return {i for i in found if i is not None}


def frozen_indices(start: StartingPoint, freeze: int | str) -> set[int]:
    """The darknet layer indices ``freeze`` (see :func:`parse_freeze`) keeps frozen."""
    indices = {layer_index(layer.name) for layer in start.model.layers} - {None}
    heads = {layer_index(name) for name in start.head_convs}
    if freeze == "backbone":
        return set(start.shared)
    if freeze == "all":
        return indices - heads
    if int(freeze) > max(indices) + 1:
        raise UsageError(f"--freeze {freeze}: the model has darknet layers 0-{max(indices)}")
    return {i for i in indices if i < int(freeze)}


def set_trainable(start: StartingPoint, frozen: set[int]) -> int:
    """Freeze the layers whose darknet index is in ``frozen``, train the others; returns how many weights train."""
    for layer in start.model.layers:
        index = layer_index(layer.name)
        layer.trainable = index is None or index not in frozen
    return int(sum(np.prod(w.shape) for w in start.model.trainable_weights))


def fit_head_anchors(shapes: np.ndarray, heads: list[dict], seed: int = 0) -> list[list]:
    """k-means anchors (1 − IoU, :func:`~visionkit.detection.anchors.kmeans_anchors`), as many per head as the
    model has, the largest for the coarsest grid (largest stride)."""
    from visionkit.detection.anchors import kmeans_anchors

    counts = [len(h["anchors"]) for h in heads]
    found = kmeans_anchors(shapes, sum(counts), seed=seed)  # sorted by area, smallest first
    order = sorted(range(len(heads)), key=lambda i: heads[i].get("stride", 0))  # finest grid first
    per_head: list = [None] * len(heads)
    start = 0
    for i in order:
        per_head[i] = [[round(float(w), 5), round(float(h), 5)] for w, h in found[start:start + counts[i]]]
        start += counts[i]
    return per_head


def split_anchors(anchors, heads: list[dict]) -> list[list]:
    """A flat list of anchors (all heads', in head order) -> one list per head, as many as each head has."""
    counts = [len(h["anchors"]) for h in heads]
    if len(anchors) != sum(counts):
        raise UsageError(f"{len(anchors)} anchors given for a detector whose heads have {counts} (in all "
                         f"{sum(counts)}); with --from, anchors come from the model or from --refit-anchors")
    starts = np.cumsum([0, *counts])
    return [list(anchors[a:b]) for a, b in zip(starts[:-1], starts[1:])]


def to_model_classes(data, model_names: list[str]):
    """``data`` relabelled with the detector's class indices and names (``keep_classes``), matched by
    :func:`~visionkit.detection.coco.class_key`; a data class the detector lacks is a UsageError."""
    from dataclasses import replace

    from visionkit.detection.coco import class_key

    lookup = {class_key(name): i for i, name in enumerate(model_names)}
    missing = [n for n in data.class_names if class_key(n) not in lookup]
    if missing:
        raise UsageError(f"--keep-classes: the detector has no class {', '.join(missing[:5])}; its classes are "
                         f"{', '.join(model_names[:12])} …; leave out --keep-classes to train new heads")
    to_model = np.array([lookup[class_key(n)] for n in data.class_names], dtype=np.int64)
    items = [replace(a, classes=to_model[a.classes] if len(a.classes) else a.classes) for a in data.items]
    return replace(data, items=items, class_names=list(model_names), warnings=list(data.warnings))
