"""Face encoder builders: Inception-ResNet-v1 shape and weight count, the backbone encoder, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest

from visionkit.core.errors import UsageError
from visionkit.faces import model as facenet


def test_inception_resnet_v1_shape_weights_and_h5_import(isolated_cache, tmp_path):
    # The weight count does not depend on the input size, so a small input keeps the test quick.
    model = facenet.inception_resnet_v1(input_shape=(96, 96, 3))
    assert model.output_shape == (None, 128)
    assert model.count_params() == 22_808_144  # the published Keras FaceNet model's count
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 22_779_312
    names = {layer.name for layer in model.layers}
    assert {"Conv2d_1a_3x3", "Block35_5_Conv2d_1x1", "Mixed_6a", "Block17_10_Conv2d_1x1", "Mixed_7a",
            "Block8_6_Conv2d_1x1", "Bottleneck", "Bottleneck_BatchNorm"} <= names
    assert "Block35_6_Conv2d_1x1" not in names and "Block17_11_Conv2d_1x1" not in names
    assert model.get_layer("Mixed_6a").output.shape[-1] == 896 and model.get_layer("Mixed_7a").output.shape[-1] == 1792
    batch = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    np.testing.assert_allclose(np.linalg.norm(np.asarray(model(batch)), axis=1), 1.0, atol=1e-5)

    # A legacy Keras HDF5 weights file (the format of the published FaceNet .h5) goes through
    # `visionkit models import facenet_keras FILE` and loads into the registry model, layer by layer in order.
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    from visionkit.core.registry import get_spec
    from visionkit.faces.predict import load_encoder
    from visionkit.core.weights import import_file

    for weight in model.weights:
        weight.assign(np.random.default_rng(len(weight.path)).normal(size=weight.shape).astype("float32") * 0.01)
    h5 = tmp_path / "facenet_weights.h5"
    with h5py.File(h5, "w") as handle:
        save_weights_to_hdf5_group(handle, model)
    import_file(get_spec("facenet_keras"), h5)
    encoder = load_encoder("facenet_keras")
    assert encoder.input_size == (160, 160) and encoder.extra["threshold"] == 0.80
    loaded = {w.path: np.asarray(w) for w in encoder.model.weights}
    assert all(np.array_equal(loaded[w.path], np.asarray(w)) for w in model.weights)


def test_inception_resnet_v1_checks_its_arguments():
    with pytest.raises(UsageError, match="input_shape"):
        facenet.inception_resnet_v1(input_shape=(40, 40, 3))
    with pytest.raises(UsageError, match="embedding_dim"):
        facenet.inception_resnet_v1(embedding_dim=0)


def test_prewhitening_is_per_image():
    layer = facenet.PerImageStandardization()
    x = np.stack([np.full((4, 4, 3), 10.0), np.arange(48, dtype=float).reshape(4, 4, 3)]).astype("float32")
    y = np.asarray(layer(x))
    np.testing.assert_allclose(y[0], 0.0, atol=1e-6)  # a flat image: std floored at 1/sqrt(N), no division by zero
    assert abs(y[1].mean()) < 1e-5 and y[1].std() == pytest.approx(1.0, rel=1e-4)


def test_backbone_encoder_is_colour_blind_when_grey(tmp_path):
    from visionkit.core.model import save_model
    from visionkit.core.registry import ModelSpec
    from visionkit.faces.predict import encode, load_encoder

    model = facenet.face_encoder("efficientnet_lite0", (64, 64, 3), 16, grayscale=True, backbone_weights="none")
    assert model.output_shape == (None, 16)
    assert model.get_layer("head_reduce").input.shape[1:3] == (4, 4)  # cut at stride 16
    assert facenet.set_trainable_tail(model, 0.0) == 0 and all(not w.trainable for w in model.get_layer(
        "efficientnet_lite0_trunk").weights)
    count = facenet.set_trainable_tail(model, 0.25)
    trunk = model.get_layer("efficientnet_lite0_trunk")
    assert count > 0 and trunk.layers[-1].trainable and not trunk.layers[1].trainable
    rng = np.random.default_rng(1)
    colour = rng.uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    luma = colour @ np.array([0.299, 0.587, 0.114], dtype="float32")
    grey = np.repeat(luma[..., None], 3, axis=-1)
    out_colour, out_grey = np.asarray(model(colour)), np.asarray(model(grey))
    np.testing.assert_allclose(out_colour, out_grey, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(out_colour), 1.0, atol=1e-5)
    path = tmp_path / "enc.keras"
    spec = ModelSpec(name="enc", task="face-encoder", builder="visionkit.faces.model:face_encoder", input_size=(64, 64))
    save_model(model, path, spec, [], extra={"threshold": 0.9, "threshold_source": "test"})
    encoder = load_encoder(str(path))
    assert encoder.input_size == (64, 64) and encoder.extra["threshold"] == 0.9
    pixels = colour.astype(np.uint8)
    np.testing.assert_allclose(encode(encoder, pixels, mirror=False), np.asarray(model(pixels.astype("float32"))), atol=1e-5)
    mirrored = encode(encoder, pixels[:, :, ::-1])  # with mirror averaging, a face and its mirror image encode alike
    np.testing.assert_allclose(encode(encoder, pixels), mirrored, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(mirrored), 1.0, atol=1e-5)
