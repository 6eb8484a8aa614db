"""U-Net builders: the paper's architecture, output sizes, heads, backbone skips, freezing, argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from visionkit.core.errors import UsageError
from visionkit.segmentation import model as U


def test_classic_unet_has_the_papers_weights():
    # Ronneberger et al. 2015, fig. 1 (same padding, no batch norm): conv k x k, cin -> cout has k*k*cin*cout + cout weights.
    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
    down = sum(conv(3, a, b) + conv(3, b, b) for a, b in [(3, 64), (64, 128), (128, 256), (256, 512), (512, 1024)])
    up = sum(conv(2, 2 * f, f) + conv(3, 2 * f, f) + conv(3, f, f) for f in (512, 256, 128, 64))
    expected = down + up + conv(1, 64, 2)
    assert expected == 31_031_810
    model = U.unet((None, None, 3), num_classes=2, depth=4, base_filters=64, batch_norm=False)
    assert model.count_params() == expected


def test_output_has_the_input_size_and_probabilities():
    model = U.unet((None, None, 3), num_classes=3, depth=2, base_filters=4)
    out = np.asarray(model(np.random.default_rng(0).uniform(0, 255, (2, 24, 40, 3)).astype("float32")))
    assert out.shape == (2, 24, 40, 3)
    assert np.allclose(out.sum(-1), 1, atol=1e-5)
    names = {layer.name for layer in model.layers}
    assert {"down1_conv1", "down2_pool", "bottom_conv2", "up1_upconv", "up1_concat", "segmentation_head"} <= names


def test_sigmoid_head_has_one_channel():
    import keras

    model = U.unet((32, 32, 3), num_classes=2, depth=1, base_filters=2, head="sigmoid")
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    out = np.asarray(model(pixels))
    assert out.shape == (1, 32, 32, 1) and ((out > 0) & (out < 1)).all()
    head = model.get_layer("segmentation_head")  # the output is the logistic sigmoid of the head's 1x1 conv
    features = np.asarray(keras.Model(model.inputs[0], head.input)(pixels))
    kernel, bias = head.get_weights()
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-(features @ kernel[0, 0] + bias))), atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"input_shape": (30, 32, 3), "depth": 2}, "multiples of 4"),
    ({"num_classes": 1}, "num_classes"),
    ({"num_classes": 3, "head": "sigmoid"}, "two classes"),
    ({"head": "linear"}, "head"),
    ({"depth": 0}, "depth"),
    ({"dropout": 1.0}, "dropout"),
])
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(UsageError, match=message):
        U.unet(**{"base_filters": 2, **kwargs})


def test_backbone_unet_takes_skips_by_name_and_freezes_the_encoder():
    model = U.unet_backbone("efficientnet_lite0", (None, None, 3), num_classes=2, weights=None, freeze_encoder=True,
                            decoder_filters=(8, 8, 8, 8, 8))
    out = np.asarray(model.predict_on_batch(np.zeros((1, 64, 96, 3), "float32")))
    assert out.shape == (1, 64, 96, 2)
    encoder = set(U.encoder_layer_names(model))
    for stride, name in U.SKIP_LAYERS["efficientnet_lite0"].items():
        assert model.get_layer(name) is not None  # the skip tensor comes from the backbone by name
    assert "stem_conv" in encoder and not any(n.startswith("decoder_") for n in encoder)
    assert not any(model.get_layer(n).trainable for n in encoder)
    assert model.get_layer("decoder_s16_conv1").trainable and model.get_layer("segmentation_head").trainable
    U.set_encoder_trainable(model, encoder, True)
    assert model.get_layer("stem_conv").trainable and model.get_layer("block3a_dwconv").trainable
    assert not model.get_layer("stem_bn").trainable  # encoder batch norm stays in inference mode
    assert model.get_layer("decoder_s16_bn1").trainable
    U.set_encoder_trainable(model, encoder, True, batch_norm=True)
    assert all(model.get_layer(n).trainable for n in encoder)


def test_backbone_table_uses_the_shared_feature_layers():
    from visionkit.zoo.efficientnet_lite import FEATURE_LAYERS

    table = U.skip_layers("EfficientNet-Lite0")
    assert all(table[s] == FEATURE_LAYERS[s] for s in (2, 4, 8, 16))
    with pytest.raises(UsageError, match="no U-Net skip table"):
        U.skip_layers("vgg16")
    with pytest.raises(UsageError, match="decoder_filters"):
        U.unet_backbone("efficientnet_lite0", decoder_filters=(8, 8), weights=None)
