"""Optimising the pixels of the generated image: the objective, Adam (compiled step) and L-BFGS (SciPy).

The image is optimised in VGG's preprocessed space (BGR minus the channel means, pixel units), where
the feature extractor takes it directly; after each Adam step it is clipped to the valid pixel range,
and L-BFGS-B gets the same range as box bounds.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from visionkit.style import losses as style_losses

#: callback(step, losses) after each step; step k = the image after k updates.
StepCallback = Callable[[int, dict], None]


class StyleObjective:
    """J(x) = alpha J_content + beta J_style + gamma TV for one content image and fixed style Grams.

    The targets (content activation, blended style Gram matrices) are computed once, at construction.
    """

    def __init__(self, extractor, content_x: np.ndarray, style_xs: list[np.ndarray], blend: list[float],
                 style_layers: Mapping[str, float], content_layer: str,
                 content_weight: float, style_weight: float, tv_weight: float):
        import tensorflow as tf

        self.model = extractor.model
        self.style_layers = {name: float(w) for name, w in style_layers.items()}
        self.content_layer = content_layer
        self.weights = (float(content_weight), float(style_weight), float(tv_weight))
        self.content_target = tf.constant(self.model(content_x)[content_layer])
        self.style_grams = blended_grams(self.model, style_xs, blend, list(self.style_layers))

    def __call__(self, x) -> dict:
        features = self.model(x)
        content = style_losses.content_cost(self.content_target, features[self.content_layer])
        style = style_losses.style_cost(self.style_grams, features, self.style_layers)
        tv = style_losses.total_variation(x)
        total = style_losses.total_cost(content, style, tv, *self.weights)
        return {"total": total, "content": content, "style": style, "tv": tv}

    def style_only(self, x) -> float:
        """The unweighted J_style of ``x`` against the style targets (for reports and tests)."""
        return float(style_losses.style_cost(self.style_grams, self.model(x), self.style_layers))


def blended_grams(model, style_xs: list[np.ndarray], blend: list[float], layers: list[str]) -> dict:
    """Sum_i w_i G_l(S_i) for every style layer l: several styles mixed by their Gram matrices."""
    import tensorflow as tf

    grams = {name: 0.0 for name in layers}
    for x, weight in zip(style_xs, blend):
        features = model(x)
        for name in layers:
            grams[name] = grams[name] + weight * style_losses.gram_matrix(features[name])
    return {name: tf.constant(gram) for name, gram in grams.items()}


def _floats(terms: Mapping) -> dict:
    return {name: float(value) for name, value in terms.items()}


def make_adam_step(objective: StyleObjective, image, optimizer, bounds, compiled: bool = True,
                   jit_compile: bool = False):
    """One Adam update of ``image`` (a Keras variable) followed by clipping; returns the pre-update losses.

    ``compiled=False`` gives the same step as a plain eager ``tf.GradientTape`` loop (the benchmark's baseline).
    """
    import tensorflow as tf

    low = tf.constant(bounds[0], tf.float32)
    high = tf.constant(bounds[1], tf.float32)

    def step():
        with tf.GradientTape() as tape:
            terms = objective(image)
        gradient = tape.gradient(terms["total"], image)
        optimizer.apply_gradients([(gradient, image)])
        image.assign(tf.clip_by_value(image, low, high))
        return terms

    return tf.function(step, jit_compile=jit_compile) if compiled else step


def run_adam(objective: StyleObjective, x0: np.ndarray, steps: int, lr: float, bounds,
             on_step: StepCallback | None = None, on_image: Callable[[int, np.ndarray], None] | None = None,
             image_every: int = 0, jit_compile: bool = False) -> tuple[np.ndarray, list[dict]]:
    """Adam (Kingma & Ba 2015) on the pixels for ``steps`` steps; returns the final image and the loss history.

    ``history[k]`` holds the losses of the image after k updates (k = 0 … steps); ``on_image(k, x)``
    is called every ``image_every`` steps with the current preprocessed image.
    """
    import keras

    image = keras.Variable(x0, dtype="float32", name="generated")
    optimizer = keras.optimizers.Adam(learning_rate=float(lr))
    optimizer.build([image])
    step = make_adam_step(objective, image, optimizer, bounds, jit_compile=jit_compile)
    history: list[dict] = []
    for index in range(steps):
        terms = _floats(step())  # losses of the image after `index` updates
        history.append({"step": index, **terms})
        if on_step:
            on_step(index, history[-1])
        done = index + 1
        if on_image and image_every and done % image_every == 0 and done < steps:
            on_image(done, np.asarray(image.numpy()))
    final = np.asarray(image.numpy())
    history.append({"step": steps, **_floats(objective(final))})
    if on_step:
        on_step(steps, history[-1])
    return final, history


def run_lbfgs(objective: StyleObjective, x0: np.ndarray, steps: int, bounds,
              on_step: StepCallback | None = None, on_image: Callable[[int, np.ndarray], None] | None = None,
              image_every: int = 0) -> tuple[np.ndarray, list[dict]]:
    """L-BFGS-B (SciPy) on the pixels, at most ``steps`` iterations, pixels bounded to the valid range.

    The loss and its gradient come from one compiled function (float32, handed to SciPy as float64).
    ``history[k]`` holds the losses after k iterations; L-BFGS may stop early when it converges.
    """
    import tensorflow as tf
    from scipy.optimize import Bounds, minimize

    shape = x0.shape

    @tf.function
    def losses_and_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            terms = objective(x)
        return terms, tape.gradient(terms["total"], x)

    last: dict = {}

    def evaluate(flat: np.ndarray):
        x = tf.constant(flat.reshape(shape), tf.float32)
        terms, gradient = losses_and_gradient(x)
        last.update(x=flat.copy(), terms=_floats(terms))
        return float(terms["total"]), np.asarray(gradient, np.float64).ravel()

    def terms_at(flat: np.ndarray) -> dict:
        if "x" in last and np.array_equal(last["x"], flat):
            return last["terms"]
        return _floats(objective(tf.constant(flat.reshape(shape), tf.float32)))

    history: list[dict] = [{"step": 0, **terms_at(x0.ravel().astype(np.float64))}]
    if on_step:
        on_step(0, history[-1])

    def callback(flat: np.ndarray) -> None:
        done = len(history)
        history.append({"step": done, **terms_at(flat)})
        if on_step:
            on_step(done, history[-1])
        if on_image and image_every and done % image_every == 0 and done < steps:
            on_image(done, flat.reshape(shape).astype(np.float32))

    low = np.broadcast_to(np.asarray(bounds[0], np.float64), shape).ravel()
    high = np.broadcast_to(np.asarray(bounds[1], np.float64), shape).ravel()
    start = np.clip(x0.astype(np.float64).ravel(), low, high)
    if steps > 0:
        result = minimize(evaluate, start, jac=True, method="L-BFGS-B", bounds=Bounds(low, high),
                          callback=callback, options={"maxiter": steps, "maxfun": steps * 2 + 10})
        final = result.x
    else:
        final = start
    return final.reshape(shape).astype(np.float32), history
