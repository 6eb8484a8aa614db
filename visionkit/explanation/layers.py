"""Finding a model's layers by name (through nested models) and reading their activations beside the output.

A finetuned visionkit classifier is nested (pixels -> backbone model -> pooling -> head model), so a layer is named
by its path, ``efficientnet_lite0/top_activation``, or by its own name when that is unique. :func:`tapped_model`
rebuilds the model's graph on the same layers (``keras.models.clone_model`` with the layers reused, descending into
the nested model that holds a layer) so that one forward pass returns the layer's activations, the input of the
final softmax and the output: a gradient of the class score with respect to the activations is then one
``GradientTape`` away.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from visionkit.core.errors import ModelError, UsageError

_TAPPED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class LayerInfo:
    """A layer of a model: its path (``backbone/name``), the layer object and its output shape (no batch axis)."""

    name: str
    layer: object
    shape: tuple

    @property
    def short_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]


def _is_model(layer) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def walk(model, prefix: str = "") -> list[LayerInfo]:
    """Every non-model layer of ``model``, in graph order, descending into nested models (their name a prefix)."""
    found = []
    for layer in model.layers:
        if _is_model(layer):
            found += walk(layer, f"{prefix}{layer.name}/")
        elif type(layer).__name__ != "InputLayer":
            found.append(LayerInfo(prefix + layer.name, layer, tuple(layer.output.shape[1:])))
    return found


def spatial_layers(model) -> list[LayerInfo]:
    """The layers with a 4-D output (batch, height, width, channels): what Grad-CAM and patches can read."""
    return [info for info in walk(model) if len(info.shape) == 3]


def layer_names(model="efficientnet_lite0") -> list[tuple[str, tuple]]:
    """(name, output shape) of every layer of ``model`` (a registry name, ``.keras`` file or LoadedModel) that
    Grad-CAM and ``visualize_units`` can read, input to output."""
    from visionkit.core.model import load_model

    return [(info.name, info.shape) for info in spatial_layers(load_model(model, task="classify").model)]


def default_layer(model) -> LayerInfo:
    """The last layer with a 4-D output before the first layer that has none (global pooling or flattening): the
    last convolutional feature map, as Selvaraju et al. (2017, section 3) use."""
    last = None
    for info in walk(model):
        if len(info.shape) == 3:
            last = info
        elif last is not None:
            return last
    if last is None:
        raise ModelError(f"{model.name}: no layer has a 4-D (height, width, channels) output; Grad-CAM needs a "
                         "convolutional model")
    return last


def find_layer(model, name: str | None, model_name: str = "") -> LayerInfo:
    """The layer called ``name`` (a path ``backbone/layer`` or a unique layer name); None: :func:`default_layer`.

    An unknown name, or one whose output is not 4-D, is a UsageError that lists the layers that can be used."""
    if name is None:
        return default_layer(model)
    candidates = spatial_layers(model)
    matches = [info for info in candidates if name in (info.name, info.short_name)]
    if len(matches) == 1:
        return matches[0]
    label = model_name or model.name
    if len(matches) > 1:
        raise UsageError(f"layer {name!r} of {label} is ambiguous; name one of: {', '.join(m.name for m in matches)}")
    other = [info for info in walk(model) if name in (info.name, info.short_name)]
    why = f"its output {other[0].shape} is not a (height, width, channels) map" if other else "there is no such layer"
    raise UsageError(f"layer {name!r} of {label}: {why}; the {len(candidates)} layers with a feature map are "
                     f"{_listing([c.name for c in candidates])}")


def _listing(names: list[str], head: int = 4, tail: int = 8) -> str:
    if len(names) <= head + tail:
        return ", ".join(names)
    return (f"{', '.join(names[:head])}, … {len(names) - head - tail} more …, {', '.join(names[-tail:])} "
            "(all of them: `visionkit models visualize MODEL --list-layers`)")


def final_layer(model):
    """The layer that produces the output (descending into a nested last model, e.g. a finetuned head)."""
    last = model.layers[-1]
    return final_layer(last) if _is_model(last) else last


def softmax_kind(layer) -> str:
    """``"dense"`` for a Dense layer with a softmax activation, ``"activation"`` for a softmax layer on its own,
    ``""`` when the output is not a softmax (the model returns scores already)."""
    import keras

    activation = getattr(layer, "activation", None)
    if activation is keras.activations.softmax or type(layer).__name__ == "Softmax":
        return "dense" if isinstance(layer, keras.layers.Dense) else "activation"
    return ""


def _holds(model, layer) -> bool:
    return any(inner is layer or (_is_model(inner) and _holds(inner, layer)) for inner in model.layers)


def _run_tapped(layer, inputs, wanted: tuple, found: dict, **kwargs):
    """Call ``layer`` on symbolic ``inputs`` as it is called in its model, recording ``found[(id, "in"|"out")]`` for
    the layers in ``wanted``; a nested model holding one of them is replayed layer by layer."""
    import keras

    if isinstance(layer, keras.Sequential) and any(_holds(layer, w) for w in wanted):
        outputs = inputs
        training = {"training": kwargs["training"]} if "training" in kwargs else {}
        for inner in layer.layers:  # a Sequential is a chain; only `training` applies to each of its layers
            outputs = _run_tapped(inner, outputs, wanted, found, **training)
    elif _is_model(layer) and any(_holds(layer, w) for w in wanted):
        def call(inner, *args, **inner_kwargs):
            return _run_tapped(inner, args[0] if len(args) == 1 else list(args), wanted, found, **inner_kwargs)

        replay = keras.models.clone_model(layer, input_tensors=inputs, clone_function=lambda same: same,
                                          call_function=call)
        outputs = replay.outputs[0] if len(replay.outputs) == 1 else replay.outputs
    else:
        outputs = layer(inputs, **kwargs)
    if any(layer is w for w in wanted):
        found[(id(layer), "in")] = inputs
        found[(id(layer), "out")] = outputs
    return outputs


#: elementwise activation layers: a unit of one is traced through its input (its pre-activation value), since a
#: saturated ReLU6 has zero gradient exactly where it responds most.
ACTIVATION_LAYERS = ("ReLU", "Activation", "LeakyReLU", "ELU", "PReLU")


def tapped_model(model, layer):
    """A Keras model on ``model``'s own layers returning ``[activations of layer, input of the final layer,
    output, pre-activation of layer]`` (the last is the activations themselves unless ``layer`` is one of
    :data:`ACTIVATION_LAYERS`); cached per model and layer."""
    import keras

    cache = _TAPPED.setdefault(model, {})
    if id(layer) not in cache:
        if len(model.inputs) != 1:
            raise ModelError(f"{model.name}: explaining needs a model with one image input, it has {len(model.inputs)}")
        last = final_layer(model)
        found: dict = {}
        inputs = keras.Input(model.input_shape[1:], name="pixels")
        outputs = _run_tapped(model, inputs, (layer, last), found)
        if isinstance(outputs, (list, tuple)):
            raise ModelError(f"{model.name}: explaining needs a model with one output, it has {len(outputs)}")
        activations = found[(id(layer), "out")]
        pre = found[(id(layer), "in")] if type(layer).__name__ in ACTIVATION_LAYERS else activations
        cache[id(layer)] = keras.Model(inputs, [activations, found[(id(last), "in")], outputs, pre],
                                       name=f"{model.name}_tapped")
    return cache[id(layer)]


def class_scores(model, pre_final, outputs):
    """The class scores before the softmax (Selvaraju et al. use y^c "before the softmax"): recomputed from the
    final layer's input when the model ends in one, else the outputs themselves (TensorFlow tensors)."""
    import tensorflow as tf

    last = final_layer(model)
    kind = softmax_kind(last)
    if kind == "dense":
        return tf.matmul(pre_final, last.kernel) + (last.bias if last.use_bias else 0.0)
    if kind == "activation":
        return pre_final
    return outputs
