"""The cost maths: the output-size formula, conv multiplies, the 1×1 bottleneck, per-layer MACs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visionkit.core.errors import UsageError
from visionkit.zoo.cost import bottleneck_cost, conv_cost, conv_output_size, conv_params, same_padding


@pytest.mark.parametrize("n, f, stride, padding, expected", [
    (6, 3, 1, 0, 4),       # course: 6×6 * 3×3 -> 4×4
    (6, 3, 1, 1, 6),       # p = 1 keeps the size
    (7, 3, 2, 0, 3),       # course: 7×7, 3×3, stride 2 -> 3×3
    (227, 11, 4, 0, 55),   # AlexNet conv1
    (55, 3, 2, "valid", 27),
    (224, 7, 2, 3, 112),   # ResNet conv1
    (32, 5, 1, "valid", 28),
    (224, 3, 2, (0, 1), 112),
    (224, 3, 2, "same", 112),
    (15, 3, 2, "same", 8),
])
def test_output_size_is_floor_of_n_plus_2p_minus_f_over_s_plus_1(n, f, stride, padding, expected):
    assert conv_output_size(n, f, stride, padding) == expected


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 300), f=st.integers(1, 11), stride=st.integers(1, 5), dilation=st.integers(1, 3))
def test_same_padding_gives_ceil_n_over_s(n, f, stride, dilation):
    before, after = same_padding(n, f, stride, dilation)
    assert 0 <= after - before <= 1
    assert conv_output_size(n, f, stride, "same", dilation) == math.ceil(n / stride)
    assert conv_output_size(n, f, stride, (before, after), dilation) == math.ceil(n / stride)


@pytest.mark.parametrize("f", [1, 3, 5, 7, 11])
def test_same_with_stride_1_is_the_course_p_of_f_minus_1_over_2(f):
    assert same_padding(28, f) == ((f - 1) // 2, (f - 1) // 2)
    assert conv_output_size(28, f, 1, (f - 1) // 2) == 28


def test_formula_matches_keras_for_many_sizes():
    keras = pytest.importorskip("keras")
    for n in (7, 8, 15, 32):
        for f in (1, 2, 3, 7):
            for stride in (1, 2, 3):
                for padding in ("valid", "same"):
                    if padding == "valid" and f > n:
                        continue
                    keras_size = keras.ops.conv(keras.KerasTensor((1, n, n, 3)), keras.KerasTensor((f, f, 3, 4)),
                                                strides=stride, padding=padding).shape[1]
                    assert conv_output_size(n, f, stride, padding) == keras_size, (n, f, stride, padding)


def test_impossible_windows_and_bad_arguments_are_usage_errors():
    with pytest.raises(UsageError, match="does not fit an input of 5 pixels"):
        conv_output_size(5, 7)
    with pytest.raises(UsageError, match="padding must be"):
        conv_output_size(5, 3, padding="full")
    with pytest.raises(UsageError, match="stride must be a positive"):
        conv_output_size(5, 3, stride=0)
    with pytest.raises(UsageError, match="input shape must be three"):
        conv_cost((28, 28))
    with pytest.raises(UsageError, match="divide by groups"):
        conv_params(3, 10, 8, groups=3)


def test_course_example_5x5_conv_costs_120_million_multiplies():
    cost = conv_cost((28, 28, 192), 5, 32, padding="same")
    assert cost.output_shape == (28, 28, 32)
    assert cost.multiplies == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400
    assert cost.params == (5 * 5 * 192 + 1) * 32 == 153_632


def test_course_bottleneck_needs_about_12_4_million():
    comparison = bottleneck_cost()  # the defaults are the course's example
    assert comparison.direct.multiplies == 120_422_400
    assert comparison.reduce.output_shape == (28, 28, 16)
    assert comparison.reduce.multiplies == 28 * 28 * 16 * 192 == 2_408_448
    assert comparison.conv.multiplies == 28 * 28 * 32 * 5 * 5 * 16 == 10_035_200
    assert comparison.bottleneck_multiplies == 12_443_648
    assert comparison.ratio == pytest.approx(9.68, abs=0.01)
    rows = comparison.to_rows()
    assert [row["multiplies"] for row in rows] == [120_422_400, 2_408_448, 10_035_200, 12_443_648]


def test_strided_valid_conv_cost():
    cost = conv_cost((227, 227, 3), 11, 96, stride=4, padding="valid")
    assert cost.output_shape == (55, 55, 96)
    assert cost.multiplies == 55 * 55 * 96 * 11 * 11 * 3
    assert cost.params == 34_944  # AlexNet conv1


def test_conv_params_with_groups_and_without_bias():
    assert conv_params(5, 96, 256) == 614_656
    assert conv_params(5, 96, 256, groups=2) == 307_456  # AlexNet's two-GPU conv2
    assert conv_params(3, 64, 64, use_bias=False) == 36_864


def test_layer_macs_of_each_counted_layer_type():
    keras = pytest.importorskip("keras")
    from visionkit.zoo.cost import summarize_model

    inputs = keras.Input((16, 16, 8))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")(inputs)                  # 8×8×4
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)          # 8×8×8
    x = keras.layers.SeparableConv2D(6, 3, padding="valid", name="sep")(x)                          # 6×6×6
    x = keras.layers.Conv2DTranspose(5, 2, strides=2, name="up")(x)                                 # 12×12×5
    x = keras.layers.Conv2D(10, 1, groups=5, name="grouped")(x)                                    # 12×12×10
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dense(7, name="dense_per_pixel")(x)                                           # 12×12×7
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, name="head")(x)
    summary = summarize_model(keras.Model(inputs, outputs))
    macs = {row.name: row.macs for row in summary.layers}
    assert macs["conv"] == 8 * 8 * 4 * 3 * 3 * 8
    assert macs["dw"] == 8 * 8 * 4 * 2 * 3 * 3
    assert macs["sep"] == 6 * 6 * 8 * 3 * 3 + 6 * 6 * 8 * 6
    assert macs["up"] == 6 * 6 * 6 * 2 * 2 * 5
    assert macs["grouped"] == 12 * 12 * 10 * 1 * 1 * (5 // 5)
    assert macs["bn"] == 0 and macs["gap"] == 0
    assert macs["dense_per_pixel"] == 12 * 12 * 10 * 7
    assert macs["head"] == 7 * 3
    assert summary.macs == sum(macs.values()) and summary.macs_complete
    assert summary.params == sum(row.params for row in summary.layers)
    assert summary.layers[0].type == "InputLayer" and summary.layers[0].output_shape == (16, 16, 8)


def test_unknown_sizes_are_reported_not_guessed():
    keras = pytest.importorskip("keras")
    from visionkit.zoo.cost import summarize_model

    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    summary = summarize_model(keras.Model(inputs, outputs))
    assert summary.layers[-1].macs is None and not summary.macs_complete
    assert summary.to_rows()[-1]["macs"] == "0+?"
