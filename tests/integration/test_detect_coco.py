"""The default detector, the bundled YOLOv3-tiny (COCO), as a new user meets it: offline, by name, 80 classes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.conftest import REPO, shared_data


def test_the_default_detector_is_yolov3_tiny_coco_and_finds_the_cup():
    import visionkit
    from visionkit.detection.config import DEFAULT_MODEL

    assert DEFAULT_MODEL == "yolov3_tiny_coco"
    result = visionkit.detect(REPO / "examples" / "coffee.jpg")[0]
    assert result.model == "yolov3_tiny_coco" and [b.label for b in result.boxes] == ["cup"]
    assert result.boxes[0].score == pytest.approx(0.5914, abs=0.002)  # the figure in the card
    x1, y1, x2, y2 = (result.boxes[0].x1, result.boxes[0].y1, result.boxes[0].x2, result.boxes[0].y2)
    assert (x1, y1, x2, y2) == pytest.approx((149.45, 23.22, 427.42, 308.4), abs=1.0)


def test_the_cli_default_names_the_classes():
    from visionkit.cli import cli

    result = CliRunner().invoke(cli, ["detect", str(REPO / "examples" / "coffee.jpg"), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["boxes"][0]["label"] == "cup" and rows[0]["boxes"][0]["class_id"] == 41
    coco = CliRunner().invoke(cli, ["detect", str(REPO / "examples" / "coffee.jpg"), "--format", "coco"])
    assert coco.exit_code == 0, coco.output
    found = json.loads(coco.output)  # COCO's own category id for cup, and COCO's 80 categories
    assert [a["category_id"] for a in found["annotations"]] == [47] and len(found["categories"]) == 80


def test_coco128_sanity_map():
    """coco128 = the first 128 images of COCO train2017, which the official model was trained on: a check that
    conversion, decoding and evaluation fit together, not a held-out score (figures in the card)."""
    from visionkit.detection.val import evaluate

    report = evaluate("yolov3_tiny_coco", shared_data("coco128"))  # two label files without images: left out
    assert report.images == 128 and sum(report.positives) == 929
    assert report.notes == ("left out 2 label file(s) without an image: coco128/labels/000000000656.txt, "
                            "coco128/labels/000000000659.txt",)
    assert report.map50 == pytest.approx(0.4115, abs=0.002) and report.map50_95 == pytest.approx(0.1983, abs=0.002)
    # 0.2861 / person 0.2106 with the cfg's later mask 0,1,2 for the 26 x 26 head, which the weights were not trained with
    assert dict(zip(report.class_names, report.ap50))["person"] == pytest.approx(0.5389, abs=0.003)
