"""``visionkit detect`` through click: predict by default, sub-commands, bad input as one line, no TF for --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_tiny_detector, make_yolo_dataset, write_image
from visionkit.cli import cli

REPO = Path(__file__).resolve().parents[2]


def _invoke(*args):
    return CliRunner().invoke(cli, ["--quiet", *map(str, args)])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_detector(tmp_path_factory.mktemp("cli") / "tiny.keras")


def test_help_does_not_import_tensorflow():
    code = ("import sys; from click.testing import CliRunner; from visionkit.cli import cli; "
            "r = CliRunner().invoke(cli, ['detect', '--help']); assert r.exit_code == 0 and 'train' in r.output, r.output; "
            "r = CliRunner().invoke(cli, ['detect', 'train', '--help']); assert '--frozen-epochs' in r.output, r.output; "
            "r = CliRunner().invoke(cli, ['detect', 'predict', '--help']); assert '0.45' in r.output, r.output; "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_images_without_a_sub_command_are_predicted(model, tmp_path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png")
    short = _invoke("detect", tmp_path / "a.png", tmp_path / "b.png", "--model", model, "--conf", "0", "--max-det", "2",
                    "--format", "jsonl")
    assert short.exit_code == 0, short.output
    lines = [json.loads(line) for line in short.output.splitlines()]
    assert [Path(r["source"]).name for r in lines] == ["a.png", "b.png"] and len(lines[0]["boxes"]) == 2
    explicit = _invoke("detect", "predict", tmp_path / "a.png", "-m", model, "--conf", "0", "--max-det", "2",
                       "--format", "jsonl")
    assert json.loads(explicit.output.splitlines()[0]) == lines[0]


def test_outputs_and_saved_images(model, tmp_path):
    write_image(tmp_path / "in" / "a.png", (90, 40))
    result = _invoke("detect", tmp_path / "in", "-m", model, "--conf", "0", "--max-det", "3", "--save", tmp_path / "seen",
                     "--format", "coco", "-o", tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    coco = json.loads((tmp_path / "out.json").read_text())
    assert len(coco["annotations"]) == 3 and coco["categories"][1] == {"id": 2, "name": "bar"}
    assert (tmp_path / "seen" / "a.png").is_file()
    csv_out = _invoke("detect", tmp_path / "in" / "a.png", "-m", model, "--conf", "0", "--max-det", "1", "--format", "csv")
    assert csv_out.output.splitlines()[0].startswith("source,label,class_id,score,x1")
    yolo = _invoke("detect", tmp_path / "in" / "a.png", "-m", model, "--conf", "0", "--format", "yolo", "-o", tmp_path / "txt")
    assert yolo.exit_code == 0 and (tmp_path / "txt" / "a.txt").is_file()


def test_bad_input_is_one_line_and_the_batch_goes_on(model, tmp_path):
    write_image(tmp_path / "ok.png")
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    result = _invoke("detect", tmp_path / "bad.jpg", tmp_path / "ok.png", "-m", model, "--format", "jsonl")
    assert result.exit_code == 1
    assert any(json.loads(line)["source"].endswith("ok.png") and "error" not in json.loads(line)
               for line in result.stdout.splitlines())
    assert "error: " in result.stderr and "Traceback" not in result.output
    missing_model = _invoke("detect", tmp_path / "ok.png", "-m", "no_such_detector")
    assert missing_model.exit_code != 0 and "unknown model 'no_such_detector'" in missing_model.output
    unknown_class = _invoke("detect", tmp_path / "ok.png", "-m", model, "--classes", "cat")
    assert unknown_class.exit_code == 2 and "unknown class 'cat'" in unknown_class.output
    no_folder = _invoke("detect", tmp_path / "ok.png", "-m", model, "--format", "yolo")
    assert no_folder.exit_code == 2 and "--output DIR" in no_folder.output


def test_val_and_anchors(model, tmp_path):
    data = make_yolo_dataset(tmp_path / "d", count=4)
    val = _invoke("detect", "val", model, data, "--save", tmp_path / "report")
    assert val.exit_code == 0, val.output
    assert "mAP@0.5" in val.output and (tmp_path / "report" / "pr_curve.png").is_file()
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["images"] == 4
    anchors = _invoke("detect", "anchors", data, "-k", "2", "--json")
    assert anchors.exit_code == 0 and len(json.loads(anchors.output)["anchors"]) == 2
    text = _invoke("detect", "anchors", data, "-k", "2")
    assert "mean IoU of each box to its best anchor" in text.output


def test_val_leaves_out_label_files_without_images_with_one_line_unless_strict(model, tmp_path):
    data = make_yolo_dataset(tmp_path / "d", count=4)
    (data / "labels" / "gone.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    for fmt in ("table", "json"):
        val = CliRunner().invoke(cli, ["detect", "val", str(model), str(data), "--format", fmt])
        assert val.exit_code == 0, val.output
        assert val.stderr.splitlines() == ["note: left out 1 label file(s) without an image: d/labels/gone.txt"]
    assert json.loads(val.stdout)["images"] == 4
    assert _invoke("detect", "val", model, data).stderr == ""  # --quiet: results and errors only
    strict = CliRunner().invoke(cli, ["detect", "val", str(model), str(data), "--strict"])
    assert strict.exit_code == 1 and "gone.txt: label file has no image of the same name" in strict.stderr
    train = _invoke("detect", "train", data, "-o", tmp_path / "run")  # training stays strict
    assert train.exit_code == 1 and "gone.txt: label file has no image" in train.stderr


def test_train_refuses_bad_labels_with_one_line(tmp_path):
    data = make_yolo_dataset(tmp_path / "d", count=6)
    (data / "labels" / "im1.txt").write_text("0 0.5 0.5 3.0 0.1\n")
    result = _invoke("detect", "train", data, "-o", tmp_path / "run")
    assert result.exit_code == 1 and "im1.txt:1: out-of-range coordinates" in result.output
    assert "Traceback" not in result.output


def test_skip_bad_labels_names_each_dropped_label_once(model, tmp_path, caplog):
    """Once on stderr, as a note or as a logged warning (pytest's caplog holds those; the CLI prints them)."""
    data = make_yolo_dataset(tmp_path / "d", count=6)
    (data / "labels" / "im1.txt").write_text("0 0.5 0.5 0.2\n")  # 4 fields: dropped, im1 stays as a background image
    for command in (["detect", "val", str(model), str(data)], ["detect", "anchors", str(data), "-k", "2"],
                    ["detect", "train", str(data), "--epochs", "1", "--frozen-epochs", "0", "--input-size", "64", "-k", "2",
                     "-o", str(tmp_path / "run")]):
        caplog.clear()
        result = CliRunner().invoke(cli, [*command, "--skip-bad-labels"])
        assert result.exit_code == 0, result.output
        said = result.stderr + "".join(record.getMessage() + "\n" for record in caplog.records)
        assert said.count("im1.txt:1: malformed line") == 1, (command[1], said)


def test_old_option_spellings_still_work_with_a_note(model, tmp_path):
    data = make_yolo_dataset(tmp_path / "d", count=6)
    val = CliRunner().invoke(cli, ["detect", "val", str(model), str(data), "--format", "yolo"])  # the data format, 0.1
    assert val.exit_code == 0 and "mAP@0.5" in val.stdout, val.output
    assert "--data-format" in val.stderr
    as_json = CliRunner().invoke(cli, ["detect", "val", str(model), str(data), "--output-format", "json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["images"] == 6
    anchors = CliRunner().invoke(cli, ["detect", "anchors", str(data), "-k", "2", "--format", "yolo", "--json"])
    assert anchors.exit_code == 0 and len(json.loads(anchors.stdout)["anchors"]) == 2
    (data / "labels" / "im1.txt").write_text("0 0.5 0.5 3.0 0.1\n")  # stops before training: the options parsed
    train = CliRunner().invoke(cli, ["detect", "train", str(data), "--finetune-lr", "1e-4", "--format", "yolo",
                                     "-o", str(tmp_path / "run")])
    assert train.exit_code == 1 and "out-of-range coordinates" in train.stderr
    assert "--finetune-lr is now --fine-tune-lr" in train.stderr


def test_train_from_options_are_checked_with_one_line(model, tmp_path):
    """Usage errors: one line, exit code 2 (as click gives for its own)."""
    data = make_yolo_dataset(tmp_path / "d", count=6)
    alone = _invoke("detect", "train", data, "--freeze", "backbone", "-o", tmp_path / "run")
    assert alone.exit_code == 2 and "give --from" in alone.output and "Traceback" not in alone.output
    wrong = _invoke("detect", "train", data, "--from", model, "--freeze", "half", "-o", tmp_path / "run2")
    assert wrong.exit_code == 2 and "freeze takes a number of darknet layers" in wrong.output
    yolov2 = _invoke("detect", "train", data, "--from", model, "-o", tmp_path / "run3")
    assert yolov2.exit_code == 2 and "YOLOv2-style detector" in yolov2.output
