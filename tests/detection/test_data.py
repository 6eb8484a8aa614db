"""Detection data sets: YOLO txt, Pascal VOC (defusedxml), COCO JSON; bad labels as clear messages; augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_yolo_dataset, shared_data, write_image
from visionkit.detection.data import load_detection_data
from visionkit.core.errors import DatasetError


def test_yolo_boxes_in_pixels_and_background_images(tmp_path):
    root = make_yolo_dataset(tmp_path / "d", count=2)
    write_image(root / "images" / "empty.png")
    (root / "labels" / "empty.txt").write_text("")
    write_image(root / "images" / "nolabel.png")
    data = load_detection_data(root)
    assert data.format == "yolo" and data.class_names == ["square", "bar"] and len(data) == 4
    by_name = {Path(a.image).name: a for a in data.items}
    assert len(by_name["empty.png"].boxes) == 0 and len(by_name["nolabel.png"].boxes) == 0
    first = by_name["im0.png"]
    assert first.size == (64, 64) and first.classes.tolist() == [0]
    x1, y1, x2, y2 = first.boxes[0]
    pixels = np.asarray(Image.open(root / "images" / "im0.png"))
    assert pixels[int(y1) + 1, int(x1) + 1, 0] == 230 and pixels[int(y2) - 1, int(x2) - 1, 0] == 230
    assert "2 background" in data.summary()


@pytest.mark.parametrize("line,message", [
    ("0 1.6 0.5 0.2 0.2", "out-of-range coordinates cx=1.6"),
    ("7 0.5 0.5 0.2 0.2", "unknown class id 7 (the data set has 2 classes, 0-1)"),
    ("0 0.5 0.5 0.2", "expected 5 fields"),
    ("zero 0.5 0.5 0.2 0.2", "malformed line"),
    ("0 0.5 0.5 -0.2 0.2", "out-of-range coordinates"),
])
def test_yolo_bad_lines_are_named_with_file_and_line(tmp_path, line, message):
    root = make_yolo_dataset(tmp_path / "d", count=2)
    with (root / "labels" / "im1.txt").open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(DatasetError) as error:
        load_detection_data(root)
    assert "labels/im1.txt:2" in str(error.value) and message in str(error.value)
    skipped = load_detection_data(root, on_error="skip")  # the bad line is dropped, the good one kept
    assert len(skipped.items[1].boxes) == 1 and len(skipped.warnings) == 1


def test_yolo_label_without_image_is_a_name_mismatch(tmp_path):
    root = make_yolo_dataset(tmp_path / "d", count=2)
    (root / "labels" / "IM0.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetError, match=r"IM0.txt: label file has no image of the same name"):
        load_detection_data(root)


def test_label_files_without_images_can_be_left_out_with_one_warning(tmp_path):
    """What ``detect val`` asks for (``missing_images='skip'``): the images that exist, and one warning naming the
    label files that have none; other problems still stop, and training's default stays strict."""
    root = make_yolo_dataset(tmp_path / "d", count=3)
    for stem in ("gone1", "gone2", "gone3", "gone4"):
        (root / "labels" / f"{stem}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetError, match="4 problem"):
        load_detection_data(root)
    data = load_detection_data(root, missing_images="skip")
    assert [Path(a.image).name for a in data.items] == ["im0.png", "im1.png", "im2.png"]
    assert data.warnings == ["left out 4 label file(s) without an image: d/labels/gone1.txt, d/labels/gone2.txt, "
                             "d/labels/gone3.txt … and 1 more"]
    (root / "labels" / "im1.txt").write_text("0 1.6 0.5 0.2 0.2\n")
    with pytest.raises(DatasetError, match=r"1 problem\(s\) .*im1.txt:1: out-of-range"):
        load_detection_data(root, missing_images="skip")
    both = load_detection_data(root, on_error="skip", missing_images="skip")
    assert len(both.warnings) == 2 and both.warnings[0].startswith("left out 4 label file(s)")

    voc = make_voc(tmp_path / "voc", {"a": ("a.png", [("cat", (1, 2, 30, 40))]), "b": (None, [("cat", (1, 1, 5, 5))])})
    assert [Path(a.image).name for a in load_detection_data(voc, missing_images="skip").items] == ["a.png"]
    write_image(tmp_path / "coco" / "x.png")
    (tmp_path / "coco" / "labels.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "x.png"}, {"id": 2, "file_name": "gone.png"}],
        "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]}],
        "categories": [{"id": 1, "name": "person"}]}))
    coco = load_detection_data(tmp_path / "coco" / "labels.json", missing_images="skip")
    assert len(coco) == 1 and coco.warnings == ["left out 1 label file(s) without an image: labels.json: image "
                                                "'gone.png' (id 2)"]


def test_boxes_slightly_outside_are_clipped(tmp_path):
    root = make_yolo_dataset(tmp_path / "d", count=1)
    (root / "labels" / "im0.txt").write_text("0 0.95 0.5 0.11 0.2\n")  # reaches x = 1.005
    data = load_detection_data(root)
    assert data.items[0].boxes[0, 2] == 64.0


VOC = """<annotation><filename>{name}</filename><path>/Users/someone/Desktop/{name}</path>
<size><width>64</width><height>48</height><depth>3</depth></size>{objects}</annotation>"""
OBJECT = "<object><name>{cls}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"


def make_voc(root: Path, files: dict) -> Path:
    """``files``: xml stem -> (image file name or None, [(class, box)])."""
    (root / "annotations").mkdir(parents=True)
    for stem, (image, objects) in files.items():
        if image:
            write_image(root / "images" / image)
        body = "".join(OBJECT.format(cls=c, b=b) for c, b in objects)
        (root / "annotations" / f"{stem}.xml").write_text(VOC.format(name=image or "gone.jpg", objects=body))
    return root


def test_voc_matches_on_file_name_and_reads_boxes(tmp_path):
    root = make_voc(tmp_path / "voc", {"a": ("a.png", [("cat", (1, 2, 30, 40)), ("dog", (5, 5, 64, 48))]),
                                       "b": ("b.png", [])})
    data = load_detection_data(root)
    assert data.format == "voc" and data.class_names == ["cat", "dog"]
    assert data.items[0].boxes.tolist() == [[1, 2, 30, 40], [5, 5, 64, 48]] and len(data.items[1].boxes) == 0


def test_voc_problems(tmp_path):
    root = make_voc(tmp_path / "voc", {"a": ("a.png", [("cat", (1, 2, 300, 40))]), "b": (None, [("cat", (1, 1, 5, 5))]),
                                       "c": ("c.png", [("cat", (9, 9, 3, 3))])})
    (root / "annotations" / "d.xml").write_text("<annotation><object>")
    with pytest.raises(DatasetError) as error:
        load_detection_data(root)
    text = str(error.value)
    assert "4 problem(s)" in text
    assert "out-of-range box" in text and "names image 'gone.jpg'" in text and "empty box" in text
    assert "malformed XML" in text


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<annotation><filename>a.png</filename><object><name>&lol3;</name></object></annotation>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<annotation><filename>a.png</filename><object><name>&secret;</name>
<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_malicious_xml_is_refused_not_expanded(tmp_path, text):
    root = make_voc(tmp_path / "voc", {"ok": ("ok.png", [("cat", (1, 1, 9, 9))])})
    write_image(root / "images" / "a.png")
    (root / "annotations" / "evil.xml").write_text(text)
    with pytest.raises(DatasetError, match=r"evil.xml: refused: the XML declares entities"):
        load_detection_data(root)
    data = load_detection_data(root, on_error="skip")
    assert [Path(a.image).name for a in data.items] == ["ok.png"] and data.class_names == ["cat"]


def test_coco_json(tmp_path):
    write_image(tmp_path / "images" / "x.png")
    write_image(tmp_path / "images" / "y.png")
    coco = {"images": [{"id": 1, "file_name": "x.png", "width": 64, "height": 48},
                       {"id": 2, "file_name": "y.png", "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 18, "bbox": [2, 3, 10, 20]},
                            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 64, 48], "iscrowd": 1}],
            "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}]}
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    data = load_detection_data(tmp_path / "ann.json")
    assert data.class_names == ["person", "dog"]  # ordered by category id
    assert data.items[0].boxes.tolist() == [[2, 3, 12, 23]] and data.items[0].classes.tolist() == [1]
    assert len(data.items[1].boxes) == 0  # no annotations (the crowd box is skipped): background
    coco["annotations"].append({"id": 3, "image_id": 2, "category_id": 99, "bbox": [1, 1, 2, 2]})
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    with pytest.raises(DatasetError, match="unknown category_id 99"):
        load_detection_data(tmp_path / "ann.json")
    (tmp_path / "ann.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_detection_data(tmp_path / "ann.json")


def test_unknown_layout_and_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="cannot tell the label format"):
        load_detection_data(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no such data set"):
        load_detection_data(tmp_path / "nope")


def test_split_is_seeded_and_disjoint(tmp_path):
    data = load_detection_data(make_yolo_dataset(tmp_path / "d", count=10))
    train, held = data.split(0.2, seed=3)
    again, _ = data.split(0.2, seed=3)
    assert len(held) == 2 and len(train) == 8
    assert {a.image for a in train.items}.isdisjoint(a.image for a in held.items)
    assert [a.image for a in train.items] == [a.image for a in again.items]


def test_augmented_boxes_still_cover_their_objects(tmp_path):
    """Flip, zoom and translate move boxes with the pixels: the bright square stays inside its box."""
    from visionkit.detection.pipeline import letterbox_data, make_dataset

    data = load_detection_data(make_yolo_dataset(tmp_path / "d", count=8))
    boxed = letterbox_data(data, (64, 64))
    colourless = {"brightness": 0.0, "contrast": 0.0, "saturation": (0.5, 0.5), "hue": 0.0}
    for images, targets in make_dataset(boxed, 8, augment=True, shuffle=True, seed=5, settings=colourless).take(2):
        for image, target in zip(images.numpy(), targets.numpy()):
            for x1, y1, x2, y2, cls in target[target[:, 4] >= 0]:
                assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
                inside = image[int(y1 * 64) + 1:int(y2 * 64) - 1, int(x1 * 64) + 1:int(x2 * 64) - 1]
                assert inside.size and inside.mean() > 150  # the object (230) fills its box


def test_shared_raccoon_loads():
    data = load_detection_data(shared_data("raccoon"))
    assert len(data) == 160 and data.class_names == ["raccoon"] and data.box_count >= 160


def test_select_classes_keeps_their_boxes_and_leaves_background(tmp_path):
    from visionkit.core.errors import UsageError

    data = load_detection_data(make_yolo_dataset(tmp_path / "d", count=4))  # classes alternate square, bar
    bars = data.select_classes(["bar"])
    assert bars.class_names == ["bar"] and [len(a.boxes) for a in bars.items] == [0, 1, 0, 1]
    assert all(a.classes.tolist() in ([], [0]) for a in bars.items)
    with pytest.raises(UsageError, match="unknown class"):
        data.select_classes(["cat"])
