"""``visionkit finetune / evaluate / export`` through click: help without TensorFlow, bad input as one line, a real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_class_folders
from visionkit.cli import cli

REPO = Path(__file__).resolve().parents[2]


def _invoke(*args):
    return CliRunner().invoke(cli, ["--quiet", *map(str, args)])


def test_help_does_not_import_tensorflow():
    code = ("import sys; from click.testing import CliRunner; from visionkit.cli import cli; "
            "r = CliRunner().invoke(cli, ['finetune', '--help']); "
            "assert r.exit_code == 0 and '--cache-features' in r.output and 'inverse-time' in r.output, r.output; "
            "r = CliRunner().invoke(cli, ['export', '--help']); assert 'tflite' in r.output; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("layout, message", [
    ("empty-class", "class folder holds no images"),
    ("single-class", "at least 2 classes"),
    ("unreadable-class", "no readable training images for class(es) red"),
])
def test_bad_datasets_fail_with_one_line_and_leave_no_run_folder(tmp_path, layout, message):
    data = make_class_folders(tmp_path / "data", per_class=4, classes=("red",) if layout == "single-class" else ("red", "blue"))
    if layout == "empty-class":
        (data / "green").mkdir()
    if layout == "unreadable-class":  # found only when the images are decoded, in the run folder's scratch space
        for image in (data / "red").iterdir():
            image.write_bytes(b"not an image")
    result = _invoke("finetune", data, "--base", "lenet5", "--weights", "none", "--dev", "0.25", "--test", "0.25",
                     "-o", tmp_path / "run")
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # else the next run would reuse an empty one, or start in run-2


def test_bad_option_values_are_usage_errors(tmp_path):
    data = make_class_folders(tmp_path / "data", per_class=2)
    result = _invoke("finetune", data, "--augment", "flip,cutout", "-o", tmp_path / "run")
    assert result.exit_code == 2 and "cutout" in result.output
    result = _invoke("finetune", data, "--human-error", "5", "-o", tmp_path / "run")
    assert result.exit_code == 2 and "fraction" in result.output


def test_model_path_that_is_not_a_keras_model(tmp_path):
    data = make_class_folders(tmp_path / "data", per_class=2)
    fake = tmp_path / "model.keras"
    fake.write_text("this is not a zip file")
    for args in (("evaluate", fake, data), ("export", fake, "--format", "tflite")):
        result = _invoke(*args)
        assert result.exit_code != 0 and "not a Keras model file" in result.output, result.output
        assert "Traceback" not in result.output


def test_onnx_without_its_packages_names_them(tmp_path):
    from importlib.util import find_spec

    if find_spec("tf2onnx") and find_spec("onnx") and find_spec("onnxruntime"):
        pytest.skip("tf2onnx, onnx and onnxruntime are installed here")
    result = _invoke("export", tmp_path / "whatever.keras", "--format", "onnx")
    assert result.exit_code == 2 and "pip install" in result.output and "tf2onnx" in result.output


@pytest.mark.slow  # trains a model
def test_finetune_evaluate_export_from_the_command_line(tmp_path):
    data = make_class_folders(tmp_path / "data", per_class=8)
    (data / "blue" / "readme.md").write_text("a non-image file inside a class folder")
    run_dir = tmp_path / "run"
    result = _invoke("finetune", data, "--base", "lenet5", "--weights", "none", "--epochs", "2", "-b", "8",
                     "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.01", "--schedule", "inverse-time",
                     "--decay", "0.5", "--dev", "0.25", "--test", "0.25", "-o", run_dir, "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[: result.output.rindex("}") + 1])
    assert payload["epochs"] == 2 and payload["report"]["split"] == "test"
    assert any("readme.md" in s["file"] for s in payload["report"]["skipped"])
    history = (run_dir / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,phase") and len(history) == 3
    result = _invoke("evaluate", run_dir / "model.keras", data, "-o", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "dominant:" in result.output
    result = _invoke("export", run_dir / "model.keras", "--format", "tflite", "--images", data / "red")
    assert result.exit_code == 0, result.output
    assert "same top-1: yes" in result.output and (run_dir / "model.tflite").is_file()
