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


def overlap(a, b) -> bool:
    (ax, ay, aw, ah, _), (bx, by, bw, bh, _) = a, b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def test_crowded_labels_do_not_cover_each_other():
    """A row of small people (as in coco128's 000000000257.jpg): smaller letters for small boxes, every label on the
    image, none over another while there is room, each as wide as its text."""
    import cv2
    import numpy as np

    from visionkit.detection.output import LABEL_FONT, MIN_LABEL_SCALE, label_layout

    boxes = np.array([[100 + 30 * i, 200, 112 + 30 * i, 240] for i in range(8)] + [[10, 0, 300, 120]], float)
    captions = [f"person 0.{90 - i}" for i in range(8)] + ["truck 0.45"]
    layout = label_layout(boxes, captions, (480, 640), base_scale=0.6)
    assert len(layout) == 9
    for (x, y, width, height, scale), caption in zip(layout, captions):
        (text_width, text_height), baseline = cv2.getTextSize(caption, LABEL_FONT, scale, 1)
        assert width <= text_width + 2 and height <= text_height + baseline + 2  # no wider than the text needs
        assert 0 <= x <= 640 - width and 0 <= y <= 480 - height
    assert all(MIN_LABEL_SCALE <= scale < 0.6 for *_, scale in layout[:8])  # 12 px wide boxes: smaller letters
    assert layout[8][4] == 0.6  # a big box keeps the image's scale
    assert not any(overlap(a, b) for i, a in enumerate(layout) for b in layout[i + 1:])
    x, y, width, height, _ = layout[8]  # no room above a box at the top edge: inside it, at its top
    assert y == 0 and 10 <= x and x + width <= 300


def test_annotated_image_draws_each_label_where_the_layout_says(tmp_path):
    import numpy as np

    from visionkit.detection.output import draw_boxes, label_layout

    image = np.full((120, 160, 3), 255, np.uint8)
    boxes = np.array([[20, 0, 150, 60], [30, 70, 40, 110]], float)
    drawn = draw_boxes(image, boxes, ["car", "person"], [0.9, 0.5], [2, 0])
    for x, y, width, height, _ in label_layout(boxes, ["car 0.90", "person 0.50"], (120, 160), base_scale=0.5):
        patch = drawn[y:y + height, x:x + width].reshape(-1, 3)
        assert (patch.sum(axis=1) < 60).any() and not (patch == 255).all(axis=1).any()  # filled, with dark text
