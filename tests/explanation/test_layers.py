"""Finding layers through nested models, the default layer, and the tapped graph."""

from __future__ import annotations

import numpy as np
import pytest

from tests.explanation.conftest import SIZE, colour_model
from visionkit.core.errors import UsageError
from visionkit.explanation.layers import class_scores, default_layer, find_layer, spatial_layers, tapped_model


@pytest.mark.parametrize("nested, prefix", [(False, ""), (True, "backbone/")])
def test_default_layer_is_the_last_feature_map_before_pooling(nested, prefix):
    model = colour_model(nested)
    assert default_layer(model).name == prefix + "smooth"
    assert [info.name for info in spatial_layers(model)] == [prefix + n for n in ("scale", "colour", "colour_relu", "smooth")]
    assert find_layer(model, "colour").name == prefix + "colour" == find_layer(model, prefix + "colour").name


def test_wrong_layers_say_why_and_list_the_valid_ones():
    model = colour_model(True)
    with pytest.raises(UsageError, match=r"'nope' of finetuned: there is no such layer; the 4 layers with a feature "
                                         r"map are backbone/scale, backbone/colour, backbone/colour_relu, backbone/smooth"):
        find_layer(model, "nope")
    with pytest.raises(UsageError, match=r"'pool' .* its output \(2,\) is not a \(height, width, channels\) map"):
        find_layer(model, "pool")


@pytest.mark.parametrize("nested", [False, True])
def test_the_tapped_model_returns_activations_scores_and_the_same_output(nested):
    import tensorflow as tf

    model = colour_model(nested)
    relu = find_layer(model, "colour_relu")
    batch = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    activations, pre_final, outputs, pre_activation = tapped_model(model, relu.layer)(batch)
    assert np.allclose(outputs, model(batch), atol=1e-6)
    assert activations.shape == (2, SIZE, SIZE, 2) and activations.numpy().min() == 0.0
    assert pre_activation.numpy().min() < 0 and np.allclose(np.maximum(pre_activation, 0), activations)
    logits = class_scores(model, pre_final, outputs)
    assert np.allclose(tf.nn.softmax(logits), outputs, atol=1e-6)
    assert np.allclose(logits, pre_final.numpy() @ (np.eye(2) * 4.0), atol=1e-5)  # pooled features x the kernel
    assert tapped_model(model, relu.layer) is tapped_model(model, relu.layer)  # cached
