"""Grad-CAM: the maths on hand-checked arrays, CAM as its special case, and heat that lands on the evidence."""

from __future__ import annotations

import numpy as np
import pytest

from tests.explanation.conftest import SIZE, colour_model, square_image
from visionkit.core.errors import UsageError
from visionkit.explanation.gradcam import (boxes_mask, channel_weights, class_activation_map, gradcam, inside_ratio,
                                           mass_inside, normalise, upsample)


def test_weights_are_pooled_gradients_and_the_map_is_relu_of_the_weighted_sum():
    gradients = np.array([[[1.0, -2.0], [3.0, 0.0]], [[1.0, 2.0], [-1.0, 4.0]]])  # (2, 2, 2)
    assert channel_weights(gradients).tolist() == [1.0, 1.0]
    activations = np.array([[[1.0, 0.0], [0.0, 2.0]], [[-3.0, 0.0], [1.0, 1.0]]])
    assert class_activation_map(activations, np.array([2.0, -1.0])).tolist() == [[2.0, 0.0], [0.0, 1.0]]


def test_upsample_keeps_a_constant_map_and_normalise_scales_to_one():
    assert np.allclose(upsample(np.full((7, 7), 0.3), 48, 80), 0.3) and upsample(np.ones((7, 7)), 48, 80).shape == (48, 80)
    assert normalise(np.array([[0.0, 2.0], [1.0, 4.0]])).tolist() == [[0.0, 0.5], [0.25, 1.0]]
    assert normalise(np.zeros((2, 2))).max() == 0.0


def test_mass_inside_a_box_against_a_uniform_map():
    mask = boxes_mask(10, 20, [(0, 0, 5, 10)])  # a quarter of the image
    assert mask.sum() == 50
    assert inside_ratio(np.ones((10, 20)), mask) == pytest.approx(1.0)
    inside_only = np.where(mask, 1.0, 0.0)
    assert mass_inside(inside_only, mask) == 1.0 and inside_ratio(inside_only, mask) == pytest.approx(4.0)
    assert np.isnan(mass_inside(np.zeros((10, 20)), mask))
    assert boxes_mask(10, 20, [(-5, -5, 2, 2), (18.6, 8.6, 40, 40)]).sum() == 4 + 1  # clipped; pixel centres decide


def test_on_global_pooling_and_a_linear_layer_gradcam_is_cam():
    """Selvaraju et al. section 3.1: with GAP + a linear class layer, Grad-CAM equals CAM (Zhou et al. 2016),
    ReLU(sum_k w_k^c A^k), up to scale; and the score differentiated is the one before the softmax."""
    import keras

    from visionkit.explanation.gradcam import activations_and_gradients
    from visionkit.explanation.layers import find_layer, tapped_model

    keras.utils.set_random_seed(3)
    inputs = keras.Input((12, 12, 3))
    features = keras.layers.Conv2D(5, 3, activation="relu", name="features")(inputs)
    dense = keras.layers.Dense(4, activation="softmax", name="classes")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(features)))
    batch = np.random.default_rng(0).uniform(0, 1, (3, 12, 12, 3)).astype(np.float32)
    tapped = tapped_model(model, find_layer(model, None).layer)
    activations, gradients, outputs, ids = activations_and_gradients(model, tapped, batch, [2, 0, 3])
    kernel = dense.kernel.numpy()
    for k, c in enumerate([2, 0, 3]):
        assert np.allclose(channel_weights(gradients[k]), kernel[:, c] / 100.0, atol=1e-6)  # 10 x 10 positions
        cam = np.maximum(activations[k] @ kernel[:, c], 0.0)
        assert np.allclose(normalise(gradcam(activations[k], gradients[k])), normalise(cam), atol=1e-5)
    assert np.allclose(outputs, model(batch).numpy(), atol=1e-6) and ids.tolist() == [2, 0, 3]


def test_the_heat_lies_on_the_red_patch_of_the_photo(colour_files, red_photo):
    import visionkit

    [result] = visionkit.explain(red_photo, model=colour_files["flat"])
    assert (result.label, result.predicted, result.layer) == ("red", "red", "smooth")
    assert result.heatmap.shape == (48, 80) and result.heatmap.max() == pytest.approx(1.0)
    mask = boxes_mask(48, 80, [(8, 4, 24, 16)])
    assert inside_ratio(result.heatmap, mask) > 8  # the box is 1/20 of the photo: 20 would be all the heat inside
    x, y = result.peak
    assert 8 <= x < 24 and 4 <= y < 16
    [green] = visionkit.explain(red_photo, model=colour_files["flat"], target_class="green")
    assert green.label == "green" and green.predicted == "red" and green.heatmap.max() == 0 and green.peak is None


def test_a_finetuned_style_nested_model_gives_the_same_heat(colour_files, red_photo):
    import visionkit

    flat, nested = (visionkit.explain(red_photo, model=colour_files[k])[0] for k in ("flat", "nested"))
    assert nested.layer == "backbone/smooth"
    assert np.allclose(flat.heatmap, nested.heatmap, atol=1e-5) and nested.score == pytest.approx(flat.score)


def test_overlays_are_written_with_unique_names_and_bad_files_do_not_stop_the_batch(colour_files, tmp_path):
    import visionkit
    from PIL import Image

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(square_image(40, 40, (0, 0, 20, 20), (20, 220, 20))).save(tmp_path / folder / "same.png")
    (tmp_path / "broken.jpg").write_text("not an image")
    sources = [tmp_path / "a" / "same.png", tmp_path / "broken.jpg", tmp_path / "b" / "same.png"]
    results = visionkit.explain(sources, model=colour_files["flat"], save=tmp_path / "out", batch_size=1)
    assert [r.ok for r in results] == [True, False, True] and "broken.jpg" in results[1].error
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["same_2_gradcam.png", "same_gradcam.png"]
    assert Image.open(results[2].path).size == (40, 40) and results[0].label == "green"
    with pytest.raises(UsageError, match="names one file"):
        visionkit.explain(sources, model=colour_files["flat"], output=tmp_path / "one.png")


def test_a_model_that_is_not_a_classifier_is_refused(tmp_path):
    import visionkit
    from visionkit.core.errors import ModelError

    with pytest.raises(ModelError, match="not a classifier"):
        visionkit.explain(np.zeros((SIZE, SIZE, 3), np.uint8), model="yolo_raccoon")


def test_colour_model_reads_as_built():
    model = colour_model()
    pixels = np.stack([square_image(SIZE, SIZE, (0, 0, SIZE, SIZE), c) for c in ((230, 20, 20), (20, 230, 20))])
    assert model(pixels.astype(np.float32)).numpy().argmax(axis=1).tolist() == [0, 1]
