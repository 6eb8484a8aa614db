"""``visionkit segment``: IMAGES go to predict, train / val sub-commands, clean one-line errors, lazy --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from visionkit.cli import cli
from tests.conftest import write_pair

REPO = Path(__file__).resolve().parents[2]


def run(*args):
    return CliRunner().invoke(cli, ["--quiet", *map(str, args)], catch_exceptions=False)


def test_help_lists_subcommands_and_does_not_import_tensorflow():
    code = ("import sys; from click.testing import CliRunner; from visionkit.cli import cli; "
            "outs = [CliRunner().invoke(cli, ['segment', *a]).output for a in (['--help'], ['predict', '--help'], ['train', '--help'])]; "
            "print('\\n'.join(outs)); print('TF', 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120).stdout
    assert "TF False" in out
    assert all(word in out for word in ("predict", "train", "val"))
    flat = "".join(out.split())  # help text wraps at spaces and hyphens
    assert "[default:unet_person]" in flat and "[default:unet-efficientnet_lite0]" in flat and "--freeze-encoder" in flat


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Eight 32x32 pairs: a bright square (class 1) on dark noise."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for index in range(8):
        image = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
        mask = np.zeros((32, 32), np.uint8)
        top, left = rng.integers(0, 16, 2)
        image[top:top + 12, left:left + 12] = 230
        mask[top:top + 12, left:left + 12] = 1
        write_pair(root, f"p{index}", image, mask, image_ext=".png")
    return root


@pytest.mark.slow  # trains a model
def test_train_val_predict_end_to_end(tiny_data, tmp_path):
    result = run("segment", "train", tiny_data, "--arch", "unet", "--depth", "1", "--filters", "2",
                 "--image-size", "32", "--crop", "32", "--epochs", "1", "-b", "4", "--val-fraction", "0.25",
                 "--loss", "ce+dice", "-o", tmp_path / "run", "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[:result.output.rindex("model:")])
    run_dir = Path(summary["run_dir"])
    assert summary["report"]["images"] == 2 and summary["report"]["subset"] == "val"
    for name in ("model.keras", "model.json", "history.csv", "curves.png", "report.json", "confusion.png", "val.txt"):
        assert (run_dir / name).is_file(), name
    assert "val_miou" in (run_dir / "history.csv").read_text().splitlines()[0]

    result = run("segment", "val", run_dir / "model.keras", tiny_data, "--subset", "val", "-o", tmp_path / "val",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["pooled"]["confusion_matrix"] == summary["report"]["pooled"]["confusion_matrix"]
    assert sum(map(sum, report["pooled"]["confusion_matrix"])) == 2 * 32 * 32
    assert (tmp_path / "val" / "report.json").is_file() and (tmp_path / "val" / "confusion.png").is_file()

    big = tmp_path / "big.png"  # not the training size: the mask must come back at 50 x 70
    Image.fromarray(np.zeros((50, 70, 3), np.uint8)).save(big)
    result = run("segment", big, tmp_path / "missing.jpg", "--model", run_dir / "model.keras",
                 "--save", tmp_path / "out", "--format", "json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert rows[0]["files"]["mask"].endswith("big_mask.png") and "no such file" in rows[1]["error"]
    assert np.asarray(Image.open(tmp_path / "out" / "big_mask.png")).shape == (50, 70)


def test_bad_data_is_one_clean_line(tmp_path):
    write_pair(tmp_path, "x", np.zeros((20, 30, 3), np.uint8), np.zeros((10, 30), np.uint8))
    result = CliRunner().invoke(cli, ["segment", "train", str(tmp_path), "-o", str(tmp_path / "run")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines() if hasattr(result, "stderr") else result.output.strip().splitlines()
    assert lines[-1].startswith("error: ") and "mask is 30x10 but its image x.jpg is 30x20" in lines[-1]
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()  # the run folder is made once the data set is read


def test_bad_classes_rule_is_a_usage_error(tiny_data, tmp_path):
    result = CliRunner().invoke(cli, ["segment", "train", str(tiny_data), "--classes", "person", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "not SOURCE:NAME" in result.output


def test_resume_needs_a_run(tiny_data, tmp_path):
    result = CliRunner().invoke(cli, ["segment", "train", str(tiny_data), "--resume", "-o", str(tmp_path / "none")])
    assert result.exit_code == 2 and "nothing to resume" in result.output
