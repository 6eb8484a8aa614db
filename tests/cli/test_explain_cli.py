"""``visionkit explain`` and ``visionkit models visualize`` through click's CliRunner."""

from __future__ import annotations

import json

from click.testing import CliRunner
from PIL import Image

from tests.explanation.conftest import colour_files, red_photo, square_image  # noqa: F401 (fixtures)
from visionkit.cli import cli


def test_explain_writes_the_overlay_and_prints_the_class(colour_files, red_photo, tmp_path):  # noqa: F811
    out = tmp_path / "heat.png"
    result = CliRunner().invoke(cli, ["-q", "explain", str(red_photo), "-m", colour_files["flat"], "-o", str(out),
                                      "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert (row["label"], row["layer"], row["path"]) == ("red", "smooth", str(out))
    assert Image.open(out).size == (80, 48)


def test_explain_errors_are_one_line(colour_files, red_photo, tmp_path):  # noqa: F811
    result = CliRunner().invoke(cli, ["explain", str(red_photo), "-m", colour_files["flat"], "--layer", "pool"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: layer 'pool' of ") and "colour_relu, smooth" in result.stderr
    result = CliRunner().invoke(cli, ["explain", str(red_photo), str(tmp_path / "missing.png"), "-m",
                                      colour_files["flat"], "--class", "green", "--format", "csv"])
    assert result.exit_code == 1 and "missing.png: no such file" in result.stderr
    assert "green" in result.stdout


def test_models_visualize_lists_layers_and_writes_a_sheet(colour_files, tmp_path):  # noqa: F811
    result = CliRunner().invoke(cli, ["models", "visualize", colour_files["nested"], "--list-layers"])
    assert result.exit_code == 0 and result.stdout.splitlines()[-1] == "backbone/smooth  32x32x2"
    for i in range(3):
        Image.fromarray(square_image(32, 32, (i, i, i + 9, i + 9), (230, 20, 20))).save(tmp_path / f"r{i}.png")
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(cli, ["models", "visualize", colour_files["flat"], str(tmp_path), "--units", "0",
                                      "--top", "2", "-o", str(sheet), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert sheet.is_file() and result.stdout.splitlines()[0] == "unit,rank,activation,source,box"
    assert len(result.stdout.splitlines()) == 3 and "1 units of smooth (2 channels), 3 images" in result.stderr
