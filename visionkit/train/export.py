"""``visionkit export``: a Keras model as a TensorFlow SavedModel, a TFLite file or ONNX, checked against the original.

SavedModel uses Keras 3's ``model.export(format="tf_saved_model")``; TFLite converts that SavedModel with
``tf.lite.TFLiteConverter``; ONNX uses ``model.export(format="onnx")``, which needs the ``tf2onnx`` and ``onnx``
packages (and ``onnxruntime`` to check it). After writing, the exported model is run on a few images (yours,
or seeded random pixels) and its outputs must match the Keras model's within a tolerance.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import util as importlib_util
from pathlib import Path
from typing import Sequence

import numpy as np

from visionkit.core.errors import ModelError, UsageError
from visionkit.train.config import DEFAULT_EXPORT_FORMAT as DEFAULT_FORMAT
from visionkit.train.config import EXPORT_FORMATS as FORMATS
from visionkit.train.results import ExportResult

SUFFIX = {"saved_model": "_saved_model", "tflite": ".tflite", "onnx": ".onnx"}
#: Largest allowed difference between exported and Keras outputs (probabilities or logits).
TOLERANCE = {"saved_model": 1e-5, "tflite": 1e-3, "onnx": 1e-3}
CHECK_COUNT = 4


def default_output(model: str, fmt: str) -> Path:
    path = Path(model)
    stem = path.with_suffix("") if path.suffix == ".keras" else Path(path.name)
    return Path(f"{stem}{SUFFIX[fmt]}")


def _missing(*packages: str) -> list[str]:
    return [name for name in packages if importlib_util.find_spec(name) is None]


def check_images(spec, images: Sequence[str] | None, count: int = CHECK_COUNT, seed: int = 0) -> np.ndarray:
    """A float32 batch (N, H, W, 3) in [0, 255]: the given images preprocessed like classify, else random pixels."""
    height, width = spec.input_size
    if not images:
        return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3)).astype(np.float32)
    from visionkit.core.io import expand_sources, load_image
    from visionkit.core.preprocess import make_transform

    transform = make_transform(spec.input_size, spec.resize, spec.interpolation, tta=False)
    return np.concatenate([transform(load_image(p)) for p in expand_sources(images)[:16]]).astype(np.float32)


def _run_saved_model(path: Path, batch: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return np.asarray(loaded.serve(tf.constant(batch)))


def _run_tflite(path: Path, batch: np.ndarray) -> np.ndarray:
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice (ai_edge_litert is not installed)
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    index = interpreter.get_input_details()[0]["index"]
    outputs = []
    for image in batch:
        interpreter.resize_tensor_input(index, (1, *image.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0])
    return np.stack(outputs)


def _run_onnx(path: Path, batch: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: batch})[0])


def _write_saved_model(model, target: Path) -> None:
    model.export(str(target), format="tf_saved_model", verbose=False)


def _write_tflite(model, target: Path) -> None:
    import tensorflow as tf

    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        saved = Path(scratch) / "saved_model"
        _write_saved_model(model, saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        target.write_bytes(converter.convert())


def _write_onnx(model, target: Path) -> None:
    model.export(str(target), format="onnx", verbose=False)


def export(model: str | os.PathLike, format: str = DEFAULT_FORMAT, output: str | os.PathLike | None = None,
           images: Sequence[str] | None = None, check: bool = True) -> ExportResult:
    """Export ``model`` (a ``.keras`` file or registry name) to ``output`` in ``format`` and check its outputs.

    The export is written beside ``output`` and renamed into place only when it is complete and checked.
    """
    from visionkit.core.model import load_model

    if format not in FORMATS:
        raise UsageError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if format == "onnx":
        missing = _missing("tf2onnx", "onnx") + (_missing("onnxruntime") if check else [])
        if missing:
            raise UsageError(f"ONNX export needs the package(s) {', '.join(missing)}, which are not installed: "
                             f"pip install {' '.join(missing)} (or export --format saved_model / tflite)")
    loaded = load_model(model)
    target = Path(output) if output else default_output(os.fspath(model), format)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        written = staging / target.name
        {"saved_model": _write_saved_model, "tflite": _write_tflite, "onnx": _write_onnx}[format](loaded.model, written)
        difference, checked, same = float("nan"), 0, True
        if check:
            batch = check_images(loaded.spec, images)
            expected = np.asarray(loaded.model(batch, training=False))
            runner = {"saved_model": _run_saved_model, "tflite": _run_tflite, "onnx": _run_onnx}[format]
            got = runner(written, batch).reshape(expected.shape)
            difference = float(np.max(np.abs(got - expected)))
            checked = len(batch)
            same = bool(np.all(got.argmax(axis=-1) == expected.argmax(axis=-1)))
            if difference > TOLERANCE[format] or not same:
                raise ModelError(f"the exported {format} model's outputs differ from the Keras model's by up to "
                                 f"{difference:.3g} (tolerance {TOLERANCE[format]:g}); the export was not kept")
        _replace(written, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(os.fspath(model), str(target), format, difference, checked, same)


def _replace(source: Path, target: Path) -> None:
    """Move ``source`` over ``target`` (a folder for SavedModel: the old one is removed only after the move)."""
    if source.is_dir():
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(source, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(source, target)
    else:
        os.replace(source, target)
