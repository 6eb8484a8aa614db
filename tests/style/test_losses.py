"""Style-transfer costs against values worked out by hand, and the course's normalisation."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from visionkit.style.losses import (content_cost, gram_matrix, layer_style_cost, style_cost, total_cost,
                                        total_variation)


def test_gram_matrix_by_hand():
    # positions (1,2), (3,4), (5,6), (7,8): A^T A = [[84, 100], [100, 120]], over 4 positions
    activation = np.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], np.float32)
    np.testing.assert_allclose(gram_matrix(activation).numpy(), [[21, 25], [25, 30]])
    np.testing.assert_allclose(gram_matrix(activation[None]).numpy(), [[[21, 25], [25, 30]]])


def test_gram_matrix_does_not_depend_on_image_size(rng):
    activation = rng.normal(size=(3, 5, 4)).astype(np.float32)
    tiled = np.tile(activation, (2, 3, 1))  # the same texture over 6 times the area
    np.testing.assert_allclose(gram_matrix(tiled).numpy(), gram_matrix(activation).numpy(), rtol=1e-5)


def test_content_cost_by_hand():
    a_c = np.ones((1, 2, 1, 2), np.float32)
    a_g = np.array([[[[1, 3]], [[0, 1]]]], np.float32)
    # squared differences 0 + 4 + 1 + 0 = 5, over 4 * n_H n_W n_C = 4 * 2 * 1 * 2
    assert float(content_cost(a_c, a_g)) == pytest.approx(5 / 16)
    assert float(content_cost(a_c, a_c)) == 0.0


def test_layer_style_cost_by_hand():
    g_s = np.array([[1, 0], [0, 1]], np.float32)
    g_g = np.array([[0, 0], [0, 3]], np.float32)
    # squared differences 1 + 0 + 0 + 4 = 5, over 4 n_C^2 = 16
    assert float(layer_style_cost(g_s, g_g)) == pytest.approx(5 / 16)


def test_layer_style_cost_equals_the_course_formula(rng):
    n_h, n_w, n_c = 4, 3, 5
    a_s = rng.normal(size=(n_h, n_w, n_c)).astype(np.float32)
    a_g = rng.normal(size=(n_h, n_w, n_c)).astype(np.float32)
    unrolled_s, unrolled_g = a_s.reshape(-1, n_c), a_g.reshape(-1, n_c)
    course = np.sum((unrolled_s.T @ unrolled_s - unrolled_g.T @ unrolled_g) ** 2) / (4 * n_c**2 * (n_h * n_w) ** 2)
    ours = float(layer_style_cost(gram_matrix(a_s), gram_matrix(a_g)))
    assert ours == pytest.approx(course, rel=1e-5)


def test_style_cost_weights_the_layers():
    g1 = np.array([[[[1.0]]]], np.float32)  # one position, one channel: Gram [[1]]
    g2 = np.array([[[[2.0, 0.0]]]], np.float32)  # Gram [[4, 0], [0, 0]]
    style_grams = {"a": np.zeros((1, 1), np.float32), "b": np.zeros((2, 2), np.float32)}
    generated = {"a": g1, "b": g2}
    # layer a: (1 - 0)^2 / (4 * 1) = 0.25; layer b: 16 / (4 * 4) = 1.0
    cost = style_cost(style_grams, generated, {"a": 0.5, "b": 2.0})
    assert float(cost) == pytest.approx(0.5 * 0.25 + 2.0 * 1.0)
    assert float(style_cost(style_grams, generated, {"a": 1.0})) == pytest.approx(0.25)  # unlisted layers ignored


def test_total_variation_by_hand():
    image = np.array([[0, 1], [3, 5]], np.float32)[..., None]
    # vertical |3-0|, |5-1| -> mean 3.5; horizontal |1-0|, |5-3| -> mean 1.5
    assert float(total_variation(image)) == pytest.approx(5.0)
    assert float(total_variation(image[None])) == pytest.approx(5.0)
    assert float(total_variation(np.full((4, 6, 3), 7.0, np.float32))) == 0.0


def test_total_variation_does_not_depend_on_size():
    stripes = np.tile(np.array([0.0, 10.0], np.float32), (8, 4))[..., None]  # 8 x 8, alternating columns
    bigger = np.tile(np.array([0.0, 10.0], np.float32), (16, 8))[..., None]
    assert float(total_variation(stripes)) == pytest.approx(10.0)
    assert float(total_variation(bigger)) == pytest.approx(10.0)


def test_total_cost_combines_the_terms():
    assert float(total_cost(2.0, 3.0, 5.0, 10.0, 40.0, 0.5)) == pytest.approx(20 + 120 + 2.5)
