"""The transfer-learning model: a registry backbone (frozen as asked) + a new softmax head, or a zoo model
built from scratch; cached features; scikit-learn heads folded into a Dense layer.

The course's recipe (Ng, *Convolutional Neural Networks*, week 2 "Transfer learning"): replace the softmax
layer, freeze the early layers (fewer with more data), and with little data pre-compute the frozen network's
outputs once and train only the shallow head on them. A pretrained backbone always runs with
``training=False``, so its batch-normalisation layers keep their ImageNet statistics even when unfrozen
(Keras' transfer-learning guide).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from visionkit.core.errors import UsageError
from visionkit.train.config import HEADS

INITIALIZERS = {"he": "he_normal", "glorot": "glorot_uniform"}
FREEZE_WORDS = ("all", "none")
DEFAULT_HEAD_DROPOUT = 0.2


def parse_freeze(value) -> str | int:
    """``"all"``, ``"none"`` or a non-negative layer count (the first N backbone layers stay frozen)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip().lower()
        if text in FREEZE_WORDS:
            return text
        try:
            number = int(text)
        except ValueError:
            raise UsageError(f"--freeze takes all, none or a number of layers, received {value!r}") from None
    if number < 0:
        raise UsageError(f"--freeze takes a non-negative number of layers, received {number}")
    return number


def is_softmax_output(model) -> bool:
    """Whether the model's last layer already ends in a softmax."""
    import keras

    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    return activation is keras.activations.softmax or getattr(last, "__class__").__name__ == "Softmax"


def with_softmax(model):
    """``model`` with a float32 softmax appended when it returns logits."""
    import keras

    if is_softmax_output(model):
        return model
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(model.outputs[0])
    return keras.Model(model.inputs, outputs, name=model.name)


def scratch_model(spec, input_shape: tuple[int, int, int], num_classes: int):
    """``spec``'s architecture with random weights and ``num_classes`` outputs, ending in a softmax."""
    from visionkit.core.model import build

    if spec.builder.startswith("keras.applications:"):
        model = build(spec, weights=None, input_shape=input_shape, classes=num_classes)
    else:
        model = build(spec, weights=None, input_shape=input_shape, num_classes=num_classes)
    if int(model.output_shape[-1]) != num_classes:
        raise UsageError(f"{spec.name!r} built {model.output_shape[-1]} outputs for {num_classes} classes")
    return with_softmax(model)


def make_head(num_classes: int, dropout: float = 0.2, l2: float = 0.0, init: str = "he", name: str = "head"):
    """Dropout + Dense softmax (float32 even under mixed precision), He or Glorot initialised, L2 on the kernel."""
    import keras

    if init not in INITIALIZERS:
        raise UsageError(f"--init takes {' or '.join(INITIALIZERS)}, received {init!r}")
    if not 0 <= dropout < 1:
        raise UsageError(f"dropout must lie in [0, 1), received {dropout}")
    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
    return keras.Sequential([
        keras.layers.Dropout(dropout, name="head_dropout"),
        keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=INITIALIZERS[init],
                           kernel_regularizer=regularizer, dtype="float32", name="head_dense"),
    ], name=name)


def pooled(backbone, inputs):
    """The backbone's features for ``inputs``, in inference mode, global-average-pooled when spatial."""
    import keras

    features = backbone(inputs, training=False)
    if len(features.shape) == 4:
        features = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    elif len(features.shape) != 2:
        features = keras.layers.Flatten(name="flatten")(features)
    return features


def transfer_model(backbone, head, input_shape: tuple[int, int, int], name: str = "finetuned"):
    """pixels [0, 255] -> backbone (inference mode) -> pool -> head; and the feature model sharing its layers."""
    import keras

    inputs = keras.Input(input_shape, name="pixels")
    features = pooled(backbone, inputs)
    model = keras.Model(inputs, head(features), name=name)
    return model, keras.Model(inputs, features, name="features")


def _is_batch_norm(layer) -> bool:
    return "BatchNormalization" in layer.__class__.__name__


def _keep_batch_norm_frozen(backbone) -> None:
    """Batch-norm layers stay non-trainable, which Keras runs in inference mode (ImageNet statistics kept).

    Needed besides ``backbone(x, training=False)``: Keras 3.15 does not honour a ``training=False`` recorded on a
    nested model's call in a functional graph (measured: one SGD epoch moved a moving variance by ~60).
    """
    for layer in backbone.layers:
        if _is_batch_norm(layer):
            layer.trainable = False


def apply_freeze(backbone, freeze: str | int) -> int:
    """Freeze all, none or ``backbone.layers[:N]`` (the input layer counts, as in Keras' guide); batch-norm layers
    are frozen in every case. Returns how many layers with weights are frozen."""
    if freeze == "all":
        backbone.trainable = False
    else:
        backbone.trainable = True
        count = 0 if freeze == "none" else int(freeze)
        for index, layer in enumerate(backbone.layers):
            layer.trainable = index >= count
        _keep_batch_norm_frozen(backbone)
    return sum(1 for layer in backbone.layers if layer.weights and not (backbone.trainable and layer.trainable))


def unfreeze_top(backbone, count: int) -> int:
    """Make the last ``count`` layers with weights (batch norm excluded, it stays frozen) trainable for phase two;
    returns how many are trainable."""
    backbone.trainable = True
    weighted = [layer for layer in backbone.layers if layer.weights and not _is_batch_norm(layer)]
    keep = set(id(layer) for layer in weighted[max(0, len(weighted) - count):])
    for layer in backbone.layers:
        layer.trainable = id(layer) in keep
    return len(keep)


def add_l2(model, factor: float) -> int:
    """Attach an L2 penalty to the kernels of every trainable Conv/Dense layer (for models built elsewhere)."""
    import keras

    if factor <= 0:
        return 0
    count = 0
    for layer in _all_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and layer.trainable and getattr(kernel, "regularizer", None) is None:
            kernel.regularizer = keras.regularizers.L2(factor)
            count += 1
    return count


def _all_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
        else:
            yield layer


# --- cached features -----------------------------------------------------------------------------------------


def feature_key(base: str, input_size, resize: int, files, extra: str = "") -> str:
    """A stable key for the features of ``files`` (path, size, mtime) through ``base`` at this preprocessing."""
    digest = hashlib.sha256(json.dumps([base, list(input_size), resize, extra]).encode())
    for path in files:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def cached_features(feature_model, pixels: np.ndarray, input_size, key: str, folder: Path,
                    batch_size: int = 32) -> tuple[np.ndarray, bool]:
    """The pooled features of ``pixels`` (centre crops), read from ``folder/<key>.npy`` or computed and written once.

    Returns ``(features, was_cached)``. The file is written atomically.
    """
    from visionkit.train.evaluate import predict_batches
    from visionkit.core.writers import atomic_path

    path = Path(folder) / f"{key}.npy"
    if path.is_file():
        features = np.load(path)
        if len(features) == len(pixels):
            return features, True
    features = predict_batches(feature_model, pixels, input_size, batch_size).astype(np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, features)
    return features, False


# --- scikit-learn heads ----------------------------------------------------------------------------------------


def fold_linear(coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense-layer (kernel (D, K), bias (K,)) computing the same scores as ``coef · (x - mean)/scale + intercept``.

    A binary scikit-learn model has one row of scores s for the second class; it becomes the two columns
    (0, s), whose softmax equals the logistic sigmoid of s.
    """
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(intercept, dtype=np.float64))
    if coef.shape[0] == 1 and num_classes == 2:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    kernel = (coef / scale[None, :]).T
    bias = intercept - (coef * (mean / scale)[None, :]).sum(axis=1)
    return kernel.astype(np.float32), bias.astype(np.float32)


def fit_linear_head(kind: str, features: np.ndarray, labels: np.ndarray, num_classes: int,
                    class_weight: dict | None, l2: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression or a linear SVM on standardised features -> Dense kernel and bias.

    The SVM's softmax of margins ranks the classes like the SVM but is not a calibrated probability.
    ``l2`` > 0 sets C = 1 / (l2 · n); otherwise scikit-learn's C = 1.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    scaler = StandardScaler().fit(features)
    scaled = scaler.transform(features)
    c = 1.0 / (l2 * len(features)) if l2 > 0 else 1.0
    if kind == "logreg":
        estimator = LogisticRegression(C=c, max_iter=2000, class_weight=class_weight, random_state=seed)
    elif kind == "svm":
        estimator = LinearSVC(C=c, class_weight=class_weight, random_state=seed, max_iter=20000)
    else:
        raise UsageError(f"--head takes {', '.join(HEADS)}, received {kind!r}")
    estimator.fit(scaled, labels)
    if len(estimator.classes_) != num_classes:
        raise UsageError(f"the training split holds {len(estimator.classes_)} of {num_classes} classes; "
                         "every class needs training images")
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    return fold_linear(estimator.coef_, estimator.intercept_, scaler.mean_, scale, num_classes)


def transfer_classifier(base: str, num_classes: int, input_shape=(224, 224, 3), dropout: float = DEFAULT_HEAD_DROPOUT):
    """Registry builder for a model trained by ``visionkit finetune`` (the architecture only; the registry then
    loads the bundled ``.keras`` file's weights into it): ``base``'s backbone + pooling + softmax head."""
    from visionkit.core.model import load_backbone

    backbone = load_backbone(base, tuple(input_shape), weights=None)
    model, _ = transfer_model(backbone, make_head(num_classes, dropout), tuple(input_shape))
    return model
