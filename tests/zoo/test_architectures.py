"""The classic architectures: parameter counts and multiply-adds against published figures, Keras
Applications equivalence, and the registry contract (any input size, any class count, no head).

Each big model is built once per module (VGG-16 at 224 holds 138 M parameters: built, never run).
Parameter counts include everything Keras counts; the first ``Rescaling`` layer has no parameters.
MACs follow visionkit.zoo.cost (Conv/Depthwise/Dense kernels only).

Sources for the pinned figures:
* VGG-16/19, ResNet-50, MobileNet v1/v2: the Keras Applications documentation table (138.4 M,
  143.7 M, 25.6 M, 4.3 M, 3.5 M) and the exact counts Keras' own builders give, compared below.
* AlexNet 62,378,344 and 1,132.33 M MACs ("FLOPs/2"): osmr/imgclsmob PyTorch model table
  (single-tower AlexNet, 227×227); the same count in HewlettPackard/dlcookbook-dlbs' model table.
* GoogLeNet 6,998,552: the Caffe bvlc_googlenet deploy network (no auxiliary heads), as listed in
  HewlettPackard/dlcookbook-dlbs' model table; 1.5 G multiply-adds: Szegedy et al. 2015, Sec. 1.
* VGG-16 15.5 G MACs: commonly cited (imgclsmob: 15,480.10 M); ResNet-50 3.8 G "FLOPs"
  (multiply-adds): He et al. 2016, Table 1; MobileNet v1 569 M (Howard et al. 2017, Table 8);
  MobileNet v2 300 M (Sandler et al. 2018, Table 4).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from visionkit.core.errors import UsageError  # noqa: E402
from visionkit.zoo import inception, mobilenet, resnet, classic as zoo  # noqa: E402
from visionkit.zoo.cost import conv_params, summarize_model  # noqa: E402

BUILDERS = {
    "lenet5": zoo.lenet5, "alexnet": zoo.alexnet, "vgg16": zoo.vgg16,
    "resnet50": resnet.resnet50, "googlenet": inception.googlenet, "mobilenet_v1": mobilenet.mobilenet_v1,
    "mobilenet_v2": mobilenet.mobilenet_v2, "tiny_sequential_cnn": zoo.tiny_sequential_cnn,
    "tiny_functional_cnn": zoo.tiny_functional_cnn,
}


@pytest.fixture(scope="module")
def built():
    """Every builder at its defaults (the papers' input sizes and class counts), built once."""
    return {name: builder() for name, builder in BUILDERS.items()}


@pytest.fixture(scope="module")
def summaries(built):
    return {name: summarize_model(model) for name, model in built.items()}


@pytest.mark.parametrize("name, params", [
    ("vgg16", 138_357_544),
    ("resnet50", 25_636_712),
    ("mobilenet_v1", 4_253_864),
    ("mobilenet_v2", 3_538_984),
    ("lenet5", 61_706),
    ("alexnet", 62_378_344),
    ("googlenet", 6_998_552),
    ("tiny_sequential_cnn", 37_633),  # the course's model.summary(): 37,633 total, 37,569 trainable
    ("tiny_functional_cnn", 1_310),
])
def test_parameter_counts_match_the_published_figures(built, summaries, name, params):
    assert built[name].count_params() == params
    assert summaries[name].params == params == sum(row.params for row in summaries[name].layers)


def test_vgg19_count_is_its_keras_trunk_plus_the_three_dense_layers():
    # Built without the head to save building 123 M more dense weights; the head is VGG-16's
    # (checked layer by layer against Keras below): 7·7·512 -> 4096 -> 4096 -> 1000.
    trunk = zoo.vgg19(include_top=False)
    assert trunk.count_params() == 20_024_384  # Keras Applications VGG19(include_top=False)
    head = (25_088 * 4_096 + 4_096) + (4_096 * 4_096 + 4_096) + (4_096 * 1_000 + 1_000)
    assert trunk.count_params() + head == 143_667_240


def test_lenet5_has_the_course_per_layer_breakdown(built):
    model = built["lenet5"]
    counts = [model.get_layer(name).count_params() for name in ("c1", "c3", "c5", "f6", "predictions")]
    assert counts == [156, 2_416, 48_120, 10_164, 850]
    assert [type(model.get_layer(n)).__name__ for n in ("s2", "s4")] == ["AveragePooling2D"] * 2
    assert model.get_layer("c1").get_config()["activation"] == "tanh"
    modern = zoo.lenet5(variant="modern")
    assert modern.count_params() == 61_706 and type(modern.get_layer("s2")).__name__ == "MaxPooling2D"


def test_batch_norm_statistics_explain_the_gap_to_trainable_counts(summaries):
    # Keras counts BN moving mean/variance as (non-trainable) parameters; the papers' 4.2 M / 3.4 M
    # figures are rounded trainable counts: 4,231,976 and 3,504,872.
    assert summaries["mobilenet_v1"].trainable_params == 4_231_976
    assert summaries["mobilenet_v2"].trainable_params == 3_504_872
    assert summaries["resnet50"].non_trainable_params == 53_120
    assert summaries["tiny_sequential_cnn"].trainable_params == 37_569


def test_alexnet_two_gpu_grouping_explains_the_papers_60_million(built):
    # The paper splits conv2, conv4 and conv5 over two GPUs (each half sees half the input maps);
    # the single-tower form connects everything. Counting those three as 2-group convolutions
    # gives the two-tower network's 60,965,224 ("60 million parameters", Krizhevsky et al. 2012).
    model = built["alexnet"]
    grouped = {"conv2", "conv4", "conv5"}
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, _, c_in, filters = layer.kernel.shape
            total += conv_params(kernel, c_in, filters, groups=2 if layer.name in grouped else 1)
        else:
            total += layer.count_params()
    assert total == 60_965_224
    assert model.get_layer("conv1").output.shape[1:] == (55, 55, 96)
    assert model.get_layer("pool5").output.shape[1:] == (6, 6, 256)


def test_multiply_adds_at_224(summaries):
    assert abs(summaries["vgg16"].macs / 15.5e9 - 1) < 0.02
    assert 3.8e9 <= summaries["resnet50"].macs <= 4.2e9
    assert abs(summaries["mobilenet_v1"].macs / 569e6 - 1) < 0.01
    assert abs(summaries["mobilenet_v2"].macs / 300e6 - 1) < 0.01
    assert abs(summaries["alexnet"].macs / 1_132.33e6 - 1) < 0.01
    # Table 1 of the paper adds up to ~1.58 G; the text speaks of a 1.5 G budget.
    assert abs(summaries["googlenet"].macs / 1.5e9 - 1) < 0.06
    assert all(summary.macs_complete for summary in summaries.values())


def test_conv_sizes_from_the_formula_agree_with_keras_in_every_model(built, summaries):
    # layer_macs recomputes each conv's output size with conv_output_size; Keras' own shape must agree.
    for name, model in built.items():
        macs = {row.name: row.macs for row in summaries[name].layers}
        for layer in model.layers:
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                out = layer.output.shape
                assert macs[layer.name] == out[1] * out[2] * out[3] * int(np.prod(layer.kernel_size)), layer.name
            elif isinstance(layer, keras.layers.Conv2D):
                out, c_in = layer.output.shape, layer.input.shape[-1]
                expected = out[1] * out[2] * out[3] * int(np.prod(layer.kernel_size)) * c_in
                assert macs[layer.name] == expected, (name, layer.name)


def test_googlenet_module_outputs_follow_table_1(built):
    model = built["googlenet"]
    expected = {"3a": (28, 28, 256), "3b": (28, 28, 480), "4a": (14, 14, 512), "4b": (14, 14, 512),
                "4c": (14, 14, 512), "4d": (14, 14, 528), "4e": (14, 14, 832), "5a": (7, 7, 832),
                "5b": (7, 7, 1024)}
    for module, shape in expected.items():
        assert tuple(model.get_layer(f"inception_{module}_output").output.shape[1:]) == shape
    assert tuple(model.get_layer("conv2_3x3").output.shape[1:]) == (56, 56, 192)


def test_inception_module_on_the_course_volume():
    inputs = keras.Input((28, 28, 192))
    model = keras.Model(inputs, inception.inception_module(inputs, name="m"))
    assert tuple(model.output.shape[1:]) == (28, 28, 256)
    summary = summarize_model(model)
    by_name = {row.name: row.macs for row in summary.layers}
    assert by_name["m_5x5_reduce"] + by_name["m_5x5"] == 12_443_648  # the course's bottleneck figure


# --- Keras Applications equivalence ---------------------------------------------------------

EXTRA_LAYERS = {"rescale", "fc1_dropout", "fc2_dropout"}  # ours only, none with parameters


def _table(model, skip=frozenset()):
    return [(layer.name, type(layer).__name__, tuple(layer.output.shape[1:])) for layer in model.layers
            if type(layer).__name__ != "InputLayer" and layer.name not in skip]


def _assert_same_layers(ours, theirs):
    mine, keras_rows = _table(ours, EXTRA_LAYERS), _table(theirs)
    assert len(mine) == len(keras_rows)
    for (name, kind, shape), (k_name, k_kind, k_shape) in zip(mine, keras_rows):
        assert (kind, shape) == (k_kind, k_shape), (name, k_name)
        # Keras gives auto-generated names a _N suffix that depends on what was built before.
        assert name in (k_name, re.sub(r"_\d+$", "", k_name)), (name, k_name)
    assert ours.count_params() == theirs.count_params()


@pytest.mark.parametrize("name, application", [
    ("resnet50", "ResNet50"), ("mobilenet_v1", "MobileNet"), ("mobilenet_v2", "MobileNetV2"),
])
def test_same_as_keras_applications_at_224(built, name, application):
    _assert_same_layers(built[name], getattr(keras.applications, application)(weights=None))


def test_vgg_same_as_keras_applications():
    # VGG-16's 224×224 count is pinned above (= Keras Applications' 138,357,544); the layer-by-layer
    # comparison with the head runs at 64×64 so that the fully connected layers stay small.
    _assert_same_layers(zoo.vgg16(input_shape=(64, 64, 3)),
                        keras.applications.VGG16(weights=None, input_shape=(64, 64, 3)))
    _assert_same_layers(zoo.vgg19(input_shape=(32, 32, 3)),
                        keras.applications.VGG19(weights=None, input_shape=(32, 32, 3)))


# --- the registry contract: any size, any class count, headless, pixels in [0, 255] -----------


def _registry_tables():
    """name -> file for every registry entry, read straight from the TOML files."""
    from visionkit.core.config import pretrained_dir
    from visionkit.core.registry import tomllib

    root = pretrained_dir()
    entries: dict[str, list[str]] = {}
    for path in [root / "registry.toml", *sorted((root / "registry.d").glob("*.toml"))]:
        with path.open("rb") as handle:
            for name in tomllib.load(handle):
                entries.setdefault(name, []).append(path.name)
    return entries


def test_architecture_names_are_unique_across_registry_files():
    # A later file silently replaces an earlier entry of the same name; ours must never do that.
    entries = _registry_tables()
    ours = [name for name, files in entries.items() if "architectures.toml" in files]
    assert len(ours) == 11
    assert {name: entries[name] for name in ours if len(entries[name]) > 1} == {}


def test_every_architecture_builds_through_the_registry_at_another_size():
    from visionkit.core.registry import get_spec
    from visionkit.core.model import build

    names = [name for name, files in _registry_tables().items() if files == ["architectures.toml"]]
    specs = [get_spec(name) for name in names]
    assert {spec.task for spec in specs} == {"architecture"}
    assert {spec.weights.source for spec in specs} == {"none"}
    for spec in specs:
        model = build(spec, weights=None, input_shape=(72, 72, 3), num_classes=5)
        assert model.output_shape == (None, 5), spec.name
        assert "Rescaling" in [type(layer).__name__ for layer in model.layers[:2]], spec.name
        features = build(spec, weights=None, input_shape=(72, 72, 3), include_top=False)
        assert len(features.output_shape) == 4, spec.name


def test_models_take_pixels_and_return_probabilities():
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    for model in (zoo.lenet5(input_shape=(32, 32, 3), num_classes=4),
                  mobilenet.mobilenet_v2(input_shape=(32, 32, 3), num_classes=4, alpha=0.35)):
        probabilities = keras.ops.convert_to_numpy(model(pixels, training=False))
        assert probabilities.shape == (2, 4)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    binary = zoo.tiny_sequential_cnn()
    assert isinstance(binary, keras.Sequential)
    assert binary.get_layer("predictions").get_config()["activation"] == "sigmoid"
    assert zoo.tiny_sequential_cnn(num_classes=3).get_layer("predictions").get_config()["activation"] == "softmax"


def test_width_multipliers_shrink_the_mobilenets():
    assert mobilenet.mobilenet_v1(alpha=0.5).count_params() == 1_342_536  # Keras MobileNet(alpha=0.5)
    half_v2 = mobilenet.mobilenet_v2(input_shape=(96, 96, 3), alpha=0.5)
    assert half_v2.get_layer("Conv1").filters == 16 and half_v2.get_layer("Conv_1").filters == 1280
    assert mobilenet.make_divisible(32 * 0.35) == 16 and mobilenet.make_divisible(96 * 0.75) == 72


@pytest.mark.parametrize("call, message", [
    (lambda: zoo.vgg16(input_shape=(16, 16, 3), include_top=False), "at least 32x32"),
    (lambda: zoo.alexnet(input_shape=(224, 224)), "input_shape must be"),
    (lambda: resnet.resnet50(num_classes=0), "num_classes must be a positive"),
    (lambda: zoo.lenet5(variant="lenet1"), "variant must be one of classic, modern"),
    (lambda: mobilenet.mobilenet_v2(alpha=0), "alpha must be a number greater than 0"),
    (lambda: inception.googlenet(dropout=1.5), r"dropout must be a number in \[0, 1\)"),
    (lambda: zoo.vgg(depth=13), "depth must be one of"),
])
def test_bad_arguments_are_usage_errors_naming_what_was_received(call, message):
    with pytest.raises(UsageError, match=message):
        call()


def test_smallest_accepted_inputs_build():
    assert zoo.lenet5(input_shape=(16, 16, 1)).output_shape == (None, 10)
    assert zoo.alexnet(input_shape=(67, 67, 3), include_top=False).output_shape == (None, 1, 1, 256)
    assert inception.googlenet(input_shape=(32, 32, 3), include_top=False).output_shape == (None, 1, 1, 1024)
