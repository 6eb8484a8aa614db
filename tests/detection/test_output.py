"""Detection outputs: COCO JSON (COCO's own category ids for COCO's 80 classes) read back as a data set, and the
drawing of annotated images."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, shared_data, write_image
from visionkit.detection.results import Box, Detections

COCO80 = (REPO / "pretrained" / "labels" / "coco80.txt").read_text(encoding="utf-8").splitlines()
#: The ten ids of 1-90 that COCO 2017 leaves without annotations (street sign, hat, shoe, eye glasses, plate, mirror,
#: window, desk, door, blender).
UNUSED_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}


def boxes_of(*class_ids: int, names) -> tuple[Box, ...]:
    return tuple(Box(10 + i, 10, 30 + i, 40, 0.9 - 0.1 * i, c, names[c]) for i, c in enumerate(class_ids))


def test_coco_models_get_coco_category_ids_in_any_spelling():
    from visionkit.detection.output import to_coco

    assert len(COCO80) == 80
    result = Detections("a.png", boxes_of(0, 41, 79, 3, names=COCO80), 64, 48, "m")
    coco = to_coco([result], COCO80)
    assert [c["id"] for c in coco["categories"]] == sorted(set(range(1, 91)) - UNUSED_IDS)
    assert coco["categories"][0] == {"id": 1, "name": "person"} and coco["categories"][-1] == {"id": 90,
                                                                                             "name": "toothbrush"}
    assert [a["category_id"] for a in coco["annotations"]] == [1, 47, 90, 4]  # person, cup, toothbrush, motorcycle
    darknet = [{"motorcycle": "motorbike", "couch": "sofa", "tv": "tvmonitor"}.get(n, n) for n in COCO80][::-1]
    reordered = Detections("a.png", boxes_of(80 - 1 - 3, 0, names=darknet), 64, 48, "m")  # motorbike, toothbrush
    coco = to_coco([reordered], darknet)  # darknet's spellings, another order: matched by name
    assert [a["category_id"] for a in coco["annotations"]] == [4, 90]
    assert {"id": 4, "name": "motorcycle"} in coco["categories"]  # COCO's own name goes with COCO's id


def test_other_models_number_their_classes_from_one():
    from visionkit.detection.output import to_coco, write_results

    names = ["raccoon", "person"]
    result = Detections("a.png", boxes_of(1, 0, names=names), 64, 48, "m")
    coco = to_coco([result], names)
    assert coco["categories"] == [{"id": 1, "name": "raccoon"}, {"id": 2, "name": "person"}]
    assert [a["category_id"] for a in coco["annotations"]] == [2, 1]
    partial = COCO80[:79]  # 79 of COCO's classes are not COCO's 80
    assert to_coco([result], partial)["categories"][1] == {"id": 2, "name": "bicycle"}


def test_coco_ids_agree_with_coco128_panoptic_ids():
    """coco128's classes.json lists COCO's panoptic ids of its masks; for things they are the detection ids."""
    from visionkit.detection.output import to_coco

    listed = json.loads(shared_data("coco128/classes.json").read_text(encoding="utf-8"))
    by_name = {name: int(number) for number, name in listed["mask_ids"].items()}
    names = listed["detection_names"]
    ours = {c["name"]: c["id"] for c in to_coco([], names)["categories"]}
    checked = [name for name in names if name in by_name]
    assert len(checked) >= 70 and all(ours[name] == by_name[name] for name in checked)


def test_coco_json_with_coco_ids_reads_back_as_a_data_set(tmp_path):
    from visionkit.detection.data import load_detection_data
    from visionkit.detection.output import write_results

    write_image(tmp_path / "images" / "a.png", (64, 48))
    write_image(tmp_path / "images" / "b.png", (64, 48))
    results = [Detections("a.png", boxes_of(41, 79, names=COCO80), 64, 48, "m"),
               Detections("b.png", boxes_of(0, names=COCO80), 64, 48, "m")]
    write_results(results, "coco", tmp_path / "found.json", COCO80)
    data = load_detection_data(tmp_path / "found.json")
    assert data.class_names == COCO80  # ordered by id: COCO's class order
    assert [a.classes.tolist() for a in data.items] == [[41, 79], [0]]
    assert data.items[0].boxes.tolist()[0] == pytest.approx([10, 10, 30, 40])
