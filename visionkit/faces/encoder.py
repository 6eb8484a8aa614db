"""Face encoders as the faces task uses them: loading (once per process), what each one needs besides its weights,
encoding aligned crops, and its thresholds and logistic verifier.

What an encoder needs is read from its ``extra`` (its registry entry's ``extra`` table, or the sidecar of a
``.keras`` file): ``alignment`` (template, default ``arcface``), ``border`` (``replicate``), ``mirror`` (encode the
mirror image too and average; default true) and ``threshold``/``threshold_source``. A threshold or verifier saved by
``faces calibrate`` for a registry encoder lives in the cache folder (``<cache>/faces/``), never in the installed
package, and takes precedence over the shipped one.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from visionkit.core.errors import InputError, ModelError, UsageError
from visionkit.core.model import LoadedModel, is_model_path, load_model
from visionkit.faces.align import ARCFACE, Alignment
from visionkit.faces.config import DEFAULT_BATCH_SIZE, DEFAULT_MODEL

_ENCODERS: dict[str, LoadedModel] = {}


def load_encoder(model: "str | os.PathLike | LoadedModel" = DEFAULT_MODEL) -> LoadedModel:
    """A registry face encoder, a ``.keras`` file, or a loaded one; loaded once per process and reused.

    Its ``extra`` holds the verification threshold τ (``threshold``, ``threshold_source``): one saved in the cache by
    ``faces calibrate --save-threshold`` (registry encoders), else the model file's sidecar, else the registry
    entry's ``extra``, else none; and the encoder's alignment and mirroring (:func:`encoder_alignment`).
    """
    if isinstance(model, LoadedModel):
        return model
    key = os.fspath(model)
    if key not in _ENCODERS:
        _ENCODERS[key] = _load_encoder(key)
    return _ENCODERS[key]


def encoder_name(model: "str | os.PathLike | LoadedModel") -> str:
    """The name an encoder is known by (registry name, or the file's absolute path) without loading it."""
    from visionkit.core.registry import get_spec

    if isinstance(model, LoadedModel):
        return model.name
    if is_model_path(model):
        return str(Path(model).resolve())
    return get_spec(os.fspath(model)).name


def _load_encoder(name: str) -> LoadedModel:
    loaded = load_model(Path(name).resolve() if is_model_path(name) else name, task="face-encoder")
    encoder = replace(loaded, name=encoder_name(name), extra=dict(loaded.extra or {}))
    saved = saved_calibration(encoder)
    if saved:
        encoder.extra.update(threshold=saved["threshold"], threshold_source=saved["threshold_source"])
    if encoder.extra.get("threshold") is not None:
        encoder.extra.setdefault("threshold_source", "model file")
    encoder_alignment(encoder)  # refuse unknown settings now, not at the first face
    return encoder


def encoder_alignment(encoder: LoadedModel) -> Alignment:
    """How ``encoder`` wants faces cut (its ``extra``: ``alignment``, ``border``; ArcFace's template by default)."""
    try:
        return Alignment(encoder.extra.get("alignment", ARCFACE.template), encoder.extra.get("border", ARCFACE.border))
    except UsageError as error:
        raise ModelError(f"{encoder.name}: {error}") from None


def encoder_mirrors(encoder: LoadedModel) -> bool:
    """Whether ``encoder``'s encodings average the face and its mirror image (``extra["mirror"]``, default true)."""
    return bool(encoder.extra.get("mirror", True))


def is_registry_encoder(encoder: LoadedModel) -> bool:
    """Loaded by registry name (its files belong to the installation or the cache, never to be written by a user)."""
    return not is_model_path(encoder.name)


def encode(encoder: LoadedModel, crops: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE,
           mirror: bool | None = None) -> np.ndarray:
    """Encodings (n, d) of aligned crops (n, h, w, 3), through the model handle's compiled function.

    With ``mirror`` (default: the encoder's setting, :func:`encoder_mirrors`) each encoding is the normalised mean
    of the crop's and its mirror image's, a test-time augmentation for aligned faces (they are nearly symmetric);
    both go through the model in one call.
    """
    crops = np.asarray(crops, dtype=np.float32)
    size = encoder.input_size
    if crops.ndim != 4 or tuple(crops.shape[1:3]) != tuple(size):
        raise InputError(f"crops must be (n, {size[0]}, {size[1]}, 3), received {crops.shape}")
    if len(crops) == 0:
        return np.zeros((0, int(encoder.model.output_shape[-1])), np.float32)
    mirror = encoder_mirrors(encoder) if mirror is None else mirror
    outputs = []
    for start in range(0, len(crops), batch_size):
        batch = crops[start:start + batch_size]
        if not mirror:
            outputs.append(encoder.predict(batch))
            continue
        both = encoder.predict(np.concatenate([batch, batch[:, :, ::-1]]))
        mean = both[:len(batch)] + both[len(batch):]
        outputs.append(mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12))
    return np.concatenate(outputs).astype(np.float32)


def resolve_threshold(encoder: LoadedModel | None, threshold: float | None) -> tuple[float, str]:
    """The threshold to decide with, and where it came from: the caller's (checked; ``encoder`` may then be None),
    else the model's."""
    from visionkit.faces.metrics import check_threshold

    if threshold is not None:
        try:
            return check_threshold(threshold), "given"
        except ValueError as error:
            raise UsageError(str(error)) from None
    if encoder.extra.get("threshold") is None:
        raise UsageError(f"no threshold is known for {encoder.name!r}; pass --threshold, or measure one with "
                         "`visionkit faces calibrate PAIRS --model ... --save-threshold eer`")
    return float(encoder.extra["threshold"]), encoder.extra["threshold_source"]


def _calibration_file(encoder: LoadedModel, kind: str) -> Path:
    from visionkit.core.config import cache_dir

    stem = encoder.name if is_registry_encoder(encoder) else encoder.path.name.rsplit(".", 1)[0]
    return cache_dir() / "faces" / f"{stem}.{kind}.json"


def verifier_paths(encoder: LoadedModel) -> list[Path]:
    """Where the logistic verifier of ``encoder`` is looked for, in order; ``faces calibrate`` writes the first.

    A registry encoder's verifier is written into the cache (``<cache>/faces/<name>.verifier.json``), never into the
    installed package; one bundled beside its weights is read after it. A model file's goes beside the file.
    """
    cached = _calibration_file(encoder, "verifier")
    beside = []
    if encoder.path is not None and encoder.path.suffix == ".keras":
        beside = [encoder.path.with_name(f"{encoder.path.name.rsplit('.', 1)[0]}.verifier.json")]
    return [cached, *beside] if is_registry_encoder(encoder) else [*beside, cached]


def load_verifier(encoder: LoadedModel) -> dict:
    from visionkit.core.integrity import check_bundled

    for path in verifier_paths(encoder):
        if path.is_file():
            check_bundled(path)  # a bundled verifier must match pretrained/SHA256SUMS
            return json.loads(path.read_text())
    raise UsageError(f"no logistic verifier for {encoder.name!r}; fit one with "
                     "`visionkit faces calibrate PAIRS --method logistic`")


def saved_calibration(encoder: LoadedModel) -> dict | None:
    """The threshold ``faces calibrate --save-threshold`` saved in the cache for a registry encoder, if any (one
    saved for other weights of that name is ignored)."""
    if not is_registry_encoder(encoder):
        return None
    path = _calibration_file(encoder, "threshold")
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    if saved.get("weights_hash", "") != encoder.spec.weights.hash:
        return None
    return {"threshold": float(saved["threshold"]), "threshold_source": f"{saved['threshold_source']} (saved in {path})"}


def save_calibration(encoder: LoadedModel, threshold: float, source: str) -> Path:
    """Make ``threshold`` the default of a registry encoder for this cache folder (not the installed package)."""
    from visionkit.core.writers import write_json_atomic

    path = _calibration_file(encoder, "threshold")
    write_json_atomic(path, {"model": encoder.name, "weights_hash": encoder.spec.weights.hash,
                             "threshold": float(threshold), "threshold_source": source})
    return path


def logistic_probability(verifier: dict, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(same) = σ(w·|f(a) − f(b)| + b), the course's logistic-regression verifier."""
    features = np.abs(np.atleast_2d(a) - np.atleast_2d(b))
    logits = features @ np.asarray(verifier["coef"], dtype=np.float64) + float(verifier["intercept"])
    return 1.0 / (1.0 + np.exp(-logits))


def _published_thresholds() -> dict:
    from visionkit.core.registry import list_specs

    return {spec.name: (spec.extra["threshold"], spec.extra.get("threshold_source", ""))
            for spec in list_specs("face-encoder") if "threshold" in spec.extra}


def __getattr__(name: str):
    """``PUBLISHED_THRESHOLDS`` (0.1, name -> (τ, source)): the thresholds of registry encoders, now read from their
    registry ``extra``."""
    if name == "PUBLISHED_THRESHOLDS":
        return _published_thresholds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["load_encoder", "encoder_name", "encoder_alignment", "encoder_mirrors", "is_registry_encoder", "encode",
           "resolve_threshold", "verifier_paths", "load_verifier", "saved_calibration", "save_calibration",
           "logistic_probability"]
