"""COCO's class names and category ids, and matching other spellings of a class to them.

COCO numbers its 80 detection classes 1–90 with gaps: the ids are the ``categories`` of the COCO 2017 annotations
(``instances_train2017.json`` / ``instances_val2017.json``, cocodataset.org, "Data format"), the same as the
"thing" ids of ``panoptic_coco_categories.json`` in github.com/cocodataset/panopticapi. Ids 12, 26, 29, 30, 45, 66,
68, 69, 71 and 83 (street sign, hat, shoe, eye glasses, plate, mirror, window, desk, door, blender) were among the
91 classes of Lin et al. 2014 but were never annotated. coco128's ``classes.json`` (``mask_ids``, panoptic ids)
agrees for the 76 classes it lists; ``tests/detection/test_output.py`` checks that.
"""

from __future__ import annotations

from typing import Sequence

#: (id, name) of COCO's 80 detection classes, in id order (= the order of darknet's coco.names and of
#: ``pretrained/labels/coco80.txt``).
COCO_CATEGORIES = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"), (7, "train"),
    (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"), (13, "stop sign"), (14, "parking meter"),
    (15, "bench"), (16, "bird"), (17, "cat"), (18, "dog"), (19, "horse"), (20, "sheep"), (21, "cow"),
    (22, "elephant"), (23, "bear"), (24, "zebra"), (25, "giraffe"), (27, "backpack"), (28, "umbrella"),
    (31, "handbag"), (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"), (36, "snowboard"),
    (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"), (41, "skateboard"),
    (42, "surfboard"), (43, "tennis racket"), (44, "bottle"), (46, "wine glass"), (47, "cup"), (48, "fork"),
    (49, "knife"), (50, "spoon"), (51, "bowl"), (52, "banana"), (53, "apple"), (54, "sandwich"), (55, "orange"),
    (56, "broccoli"), (57, "carrot"), (58, "hot dog"), (59, "pizza"), (60, "donut"), (61, "cake"), (62, "chair"),
    (63, "couch"), (64, "potted plant"), (65, "bed"), (67, "dining table"), (70, "toilet"), (72, "tv"),
    (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"), (77, "cell phone"), (78, "microwave"),
    (79, "oven"), (80, "toaster"), (81, "sink"), (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"),
    (87, "scissors"), (88, "teddy bear"), (89, "hair drier"), (90, "toothbrush"),
)
#: Other spellings of COCO classes (darknet's data/coco.names, Pascal VOC) -> COCO's, both as :func:`class_key`s.
CLASS_ALIASES = {"motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch", "tvmonitor": "tv"}


def class_key(name: str) -> str:
    """What two spellings of one class share: lower case without spaces, ``_``, ``-``; old names -> COCO's
    (``"Potted_Plant"`` and ``"pottedplant"`` -> ``"pottedplant"``, ``"tvmonitor"`` -> ``"tv"``)."""
    squashed = "".join(c for c in str(name).lower() if c not in " _-")
    return CLASS_ALIASES.get(squashed, squashed)


def coco_categories(class_names: Sequence[str]) -> list[dict]:
    """The ``categories`` of a COCO JSON for a detector's classes, in class order (``[i]`` is class ``i``'s).

    A detector whose classes are COCO's 80 (matched by :func:`class_key`: any order, darknet's or VOC's spellings)
    gets COCO's ids and names, so its results go to pycocotools and COCO's own annotations unchanged; any other
    gets ids 1, 2, … (class index + 1; COCO keeps 0 for no category) with its own names.
    """
    official = {class_key(name): (number, name) for number, name in COCO_CATEGORIES}
    keys = [class_key(name) for name in class_names]
    if len(keys) == len(official) and set(keys) == set(official):
        return [{"id": official[key][0], "name": official[key][1]} for key in keys]
    return [{"id": index + 1, "name": str(name)} for index, name in enumerate(class_names)]
