"""``summarize``: the layer table (output shapes, parameters, multiply-adds) of any visionkit model.

Works on a registry name (built without weights, so nothing is downloaded), a saved ``.keras``
file, or a Keras model in memory. MACs follow the convention in :mod:`visionkit.zoo.cost`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from visionkit.core.errors import UsageError
from visionkit.zoo.cost import summarize_model
from visionkit.zoo.results import ModelSummary

KERAS_APPLICATIONS = "keras.applications:"


def build_architecture(name: str, input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                       include_top: bool = True):
    """The registry model ``name`` without weights, at ``input_shape`` with ``num_classes`` outputs if given."""
    from visionkit.core.registry import get_spec
    from visionkit.core.model import build

    spec = get_spec(name)
    overrides: dict = {"include_top": include_top}
    if input_shape is not None:
        overrides["input_shape"] = tuple(input_shape)
    if num_classes is not None:
        # Keras Applications call it `classes`; visionkit builders `num_classes`.
        overrides["classes" if spec.builder.startswith(KERAS_APPLICATIONS) else "num_classes"] = num_classes
    try:
        return build(spec, weights=None, **overrides), spec
    except ValueError as error:  # Keras Applications reject input shapes with ValueError
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
        given = ", ".join(f"{key}={value!r}" for key, value in overrides.items())
        raise UsageError(f"cannot build {spec.name} with {given}: {first_line}") from None


def summarize(model, input_shape: Sequence[int] | None = None, num_classes: int | None = None,
              include_top: bool = True) -> ModelSummary:
    """One row per layer (name, type, output shape, parameters, MACs) and the totals.

    ``model`` is a registry name (``"resnet50_arch"``), a path to a ``.keras`` file or a Keras model;
    ``input_shape`` (H, W, C) and ``num_classes`` rebuild a registry model at another size.
    """
    if not isinstance(model, (str, os.PathLike)):
        return summarize_model(model)
    from visionkit.core.model import is_model_path

    text = os.fspath(model)
    if is_model_path(text):
        if input_shape is not None or num_classes is not None or not include_top:
            raise UsageError(f"{text}: a saved model has a fixed input shape and head; "
                             "--input-shape/--classes only apply to registry names")
        from visionkit.core.model import load_model_file

        return summarize_model(load_model_file(text).model, name=Path(text).name)
    built, spec = build_architecture(text, input_shape, num_classes, include_top)
    return summarize_model(built, name=spec.name)
