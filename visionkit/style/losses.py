"""The costs of neural style transfer (Gatys, Ecker & Bethge 2015), as pure TensorFlow functions.

Normalisations follow the deep-learning course's formulation of the paper:

- content cost  J_content = 1 / (4 n_H n_W n_C) * sum (a_C - a_G)^2
- Gram matrix   G = A^T A / (n_H n_W), A the (n_H n_W, n_C) activations (normalised by the number of
  positions, so images of different sizes have comparable Gram matrices)
- layer style   J_style^[l] = 1 / (4 n_C^2) * sum (G_S - G_G)^2, which equals the course's
  1 / (4 n_C^2 (n_H n_W)^2) * sum (A_S^T A_S - A_G^T A_G)^2 when both images have n_H n_W positions
- style cost    J_style = sum_l lambda_l J_style^[l]
- total         J = alpha J_content + beta J_style (+ gamma TV, Mahendran & Vedaldi 2015)

Activations may carry a leading batch axis of 1; all functions return float32 scalars
(``gram_matrix`` returns (..., n_C, n_C)).
"""

from __future__ import annotations

from typing import Mapping


def _tf():
    import tensorflow as tf

    return tf


def content_cost(content_activation, generated_activation):
    """J_content = sum (a_C - a_G)^2 / (4 n_H n_W n_C) (Gatys et al. 2015, eq. 1, course normalisation)."""
    tf = _tf()
    a_c = tf.cast(content_activation, tf.float32)
    a_g = tf.cast(generated_activation, tf.float32)
    return tf.reduce_mean(tf.square(a_c - a_g)) / 4.0


def gram_matrix(activation):
    """G[c, d] = sum over positions of a[..., c] * a[..., d], divided by the number of positions (eq. 3).

    ``activation``: (n_H, n_W, n_C) or (batch, n_H, n_W, n_C) -> (n_C, n_C) or (batch, n_C, n_C).
    """
    tf = _tf()
    a = tf.cast(activation, tf.float32)
    shape = tf.shape(a)
    positions = tf.cast(shape[-3] * shape[-2], tf.float32)
    return tf.einsum("...ijc,...ijd->...cd", a, a) / positions


def layer_style_cost(style_gram, generated_gram):
    """J_style^[l] = sum (G_S - G_G)^2 / (4 n_C^2) for Gram matrices normalised by positions (eq. 4)."""
    tf = _tf()
    return tf.reduce_mean(tf.square(tf.cast(style_gram, tf.float32) - tf.cast(generated_gram, tf.float32))) / 4.0


def style_cost(style_grams: Mapping, generated_activations: Mapping, layer_weights: Mapping[str, float]):
    """J_style = sum_l lambda_l J_style^[l] (eq. 5) over the layers named in ``layer_weights``.

    ``style_grams`` are precomputed (once per run); ``generated_activations`` are this step's activations.
    """
    tf = _tf()
    total = tf.constant(0.0, tf.float32)
    for name, weight in layer_weights.items():
        total += float(weight) * layer_style_cost(style_grams[name], gram_matrix(generated_activations[name]))
    return total


def total_variation(image):
    """Mean absolute difference between vertical and between horizontal neighbours, summed.

    An anisotropic L1 total variation (as ``tf.image.total_variation``) divided by the number of
    differences in each direction, so the weight does not depend on the image size.
    ``image``: (H, W, C) or (batch, H, W, C).
    """
    tf = _tf()
    x = tf.cast(image, tf.float32)
    vertical = x[..., 1:, :, :] - x[..., :-1, :, :]
    horizontal = x[..., :, 1:, :] - x[..., :, :-1, :]
    return tf.reduce_mean(tf.abs(vertical)) + tf.reduce_mean(tf.abs(horizontal))


def total_cost(content, style, tv, content_weight: float, style_weight: float, tv_weight: float):
    """J = alpha J_content + beta J_style + gamma TV (Gatys et al. 2015, eq. 7, plus the TV prior)."""
    return content_weight * content + style_weight * style + tv_weight * tv
