"""`visionkit models summary` and `visionkit models cost` through click's test runner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from visionkit.cli import cli


def run(*args):
    return CliRunner().invoke(cli, ["models", *args])


def test_cost_defaults_to_the_course_bottleneck_example():
    result = run("cost")
    assert result.exit_code == 0, result.output
    assert "120,422,400" in result.output and "12,443,648" in result.output
    assert "2,408,448" in result.output and "10,035,200" in result.output
    assert "9.7x fewer" in result.output


def test_cost_of_one_layer_as_json():
    result = run("cost", "--input-shape", "227,227,3", "-f", "11", "-n", "96", "-s", "4", "-p", "valid",
                 "--bottleneck", "0", "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["output_shape"] == [55, 55, 96]
    assert row["multiplies"] == 55 * 55 * 96 * 11 * 11 * 3 and row["params"] == 34_944


def test_cost_csv_to_a_file(tmp_path):
    target = tmp_path / "cost.csv"
    result = run("cost", "-o", str(target))
    assert result.exit_code == 0, result.output
    lines = target.read_text().splitlines()
    assert lines[0].startswith("layer,input,filter") and lines[-1].endswith(",12443648")


@pytest.mark.parametrize("args, message", [
    (["--input-shape", "28,28"], "three positive numbers"),
    (["--padding", "full"], "'same', 'valid' or a number"),
])
def test_cost_rejects_bad_options(args, message):
    result = run("cost", *args)
    assert result.exit_code == 2 and message in result.output


def test_cost_window_larger_than_the_input_is_one_line_error():
    result = run("cost", "--input-shape", "5,5,3", "-f", "7", "-p", "valid", "-b", "0")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: a 7×7 window with stride 1 and padding 'valid' does not fit an input of 5 pixels "
        "(output would be -1); use a larger input or more padding"
    ]


def test_summary_table_of_lenet5():
    result = run("summary", "lenet5")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "type", "output_shape", "params", "macs"]
    c1 = next(line for line in lines if line.startswith("c1 "))
    assert c1.split() == ["c1", "Conv2D", "28x28x6", "156", "117,600"]
    assert any(line.startswith("total") and "61,706" in line for line in lines)
    assert "params: 61,706 (trainable 61,706, non-trainable 0)" in result.output
    assert "multiply-adds: 416,520" in result.output


def test_summary_json_at_another_size_and_class_count():
    result = run("summary", "lenet5_modern", "--input-shape", "28,28,1", "--classes", "3", "--format", "json")
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.output)
    assert summary["model"] == "lenet5_modern" and summary["input_shape"] == [28, 28, 1]
    layers = {layer["name"]: layer for layer in summary["layers"]}
    assert layers["predictions"]["output_shape"] == [3] and layers["s2"]["type"] == "MaxPooling2D"
    assert layers["c5"]["params"] == 4 * 4 * 16 * 120 + 120
    assert summary["params"] == sum(layer["params"] for layer in summary["layers"])
    assert summary["macs"] == sum(layer["macs"] for layer in summary["layers"]) and summary["macs_complete"]


def test_summary_without_the_head():
    result = run("summary", "tiny_functional_cnn", "--no-top", "--format", "json")
    (summary,) = json.loads(result.output)
    assert summary["layers"][-1]["name"] == "pool2" and summary["params"] == 392 + 528


def test_summary_of_efficientnet_lite0_counts_depthwise_convolutions():
    result = run("summary", "efficientnet_lite0", "--format", "json")
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.output)
    depthwise = [layer for layer in summary["layers"] if layer["type"] == "DepthwiseConv2D"]
    assert len(depthwise) == 16 and all(layer["macs"] > 0 for layer in depthwise)
    assert 4_600_000 < summary["params"] < 4_800_000  # EfficientNet-Lite0: 4.7 M (TF Lite README)
    assert summary["macs_complete"] and summary["macs"] > 0


def test_summary_of_a_saved_keras_file(tmp_path):
    from visionkit.zoo.classic import tiny_functional_cnn

    path = tmp_path / "signs.keras"
    tiny_functional_cnn().save(path)
    result = run("summary", str(path), "--format", "csv")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "name,type,output_shape,params,macs"
    assert lines[-1].startswith("total,,,1310,")
    refused = run("summary", str(path), "--classes", "3")
    assert refused.exit_code == 2 and "only apply to registry names" in refused.output


@pytest.mark.parametrize("args, code, message", [
    (["no_such_net"], 1, "unknown model 'no_such_net'"),
    (["alexnet", "--input-shape", "40,40,3"], 2, "at least 67x67"),
    (["resnet50", "--input-shape", "20,20,3"], 2, "cannot build resnet50 with"),
    (["lenet5", "--input-shape", "a,b,c"], 2, "three positive numbers"),
])
def test_summary_errors_are_one_line(args, code, message):
    result = run("summary", *args)
    assert result.exit_code == code and message in result.output
    if code == 1 or "cannot build" in message or "at least" in message:
        assert len(result.output.strip().splitlines()) == 1
