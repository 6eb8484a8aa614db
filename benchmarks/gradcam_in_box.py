"""Is the Grad-CAM heat where the object is? Share of the map's mass inside the ground-truth boxes, against a uniform
map and a centred Gaussian map (objects in photos tend to sit in the middle), on two box-labelled sets.

    python benchmarks/gradcam_in_box.py [--model efficientnet_lite0] [--figure docs/gradcam_examples.jpg]

ratio = (heat mass inside the boxes / total heat) / (box area / image area): 1 is no better than spreading the heat
evenly. The boxes of an image are its boxes of the class explained (their union).

1. raccoon, the 32 photos ``yolo_raccoon`` held out (its card, ``pretrained/cards/yolo_raccoon.md``). ImageNet-1k has
   no raccoon class, so Grad-CAM explains the classifier's top class, whatever it is (the classes are listed), and
   the question is whether the evidence for that decision lies on the raccoon.
2. coco128 (all 128 photos; nothing here is trained or tuned on them): the top class is explained when it belongs to
   one of the COCO categories below (:data:`COCO_TO_IMAGENET`, ImageNet classes by name, written down before any
   result was seen) and that category has boxes in the photo; other photos are counted, not scored. ImageNet has no
   person class, so people are never the explained class.
"""

from __future__ import annotations

import argparse
import os
import statistics
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import visionkit  # noqa: E402
from visionkit.explanation.gradcam import boxes_mask, inside_ratio  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
HELD_OUT = ("raccoon-2 raccoon-4 raccoon-7 raccoon-16 raccoon-18 raccoon-23 raccoon-31 raccoon-34 raccoon-36 raccoon-39 "
            "raccoon-43 raccoon-48 raccoon-54 raccoon-72 raccoon-77 raccoon-82 raccoon-84 raccoon-89 raccoon-91 "
            "raccoon-98 raccoon-106 raccoon-111 raccoon-118 raccoon-146 raccoon-159 raccoon-161 raccoon-172 "
            "raccoon-177 raccoon-181 raccoon-184 raccoon-193 raccoon-199").split()  # pretrained/cards/yolo_raccoon.md

#: COCO category -> the ImageNet-1k classes (first name in pretrained/labels/imagenet1k.txt) that are kinds of it.
COCO_TO_IMAGENET = {
    "bicycle": ["bicycle-built-for-two", "mountain bike"],
    "car": ["ambulance", "beach wagon", "cab", "convertible", "jeep", "limousine", "minivan", "Model T", "pickup",
            "racer", "sports car", "police van"],
    "motorcycle": ["moped", "motor scooter"],
    "airplane": ["airliner", "warplane"],
    "bus": ["minibus", "school bus", "trolleybus"],
    "train": ["bullet train", "electric locomotive", "freight car", "passenger car", "steam locomotive", "streetcar"],
    "truck": ["fire engine", "garbage truck", "moving van", "pickup", "police van", "tow truck", "trailer truck"],
    "boat": ["canoe", "catamaran", "container ship", "fireboat", "gondola", "lifeboat", "liner", "pirate", "schooner",
             "speedboat", "submarine", "trimaran", "yawl"],
    "traffic light": ["traffic light"], "stop sign": ["street sign"], "parking meter": ["parking meter"],
    "bench": ["park bench"], "cat": ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"],
    "horse": ["sorrel"], "sheep": ["ram", "bighorn"], "cow": ["ox", "water buffalo", "bison"],
    "elephant": ["tusker", "Indian elephant", "African elephant"],
    "bear": ["brown bear", "American black bear", "ice bear", "sloth bear"], "zebra": ["zebra"],
    "backpack": ["backpack"], "umbrella": ["umbrella"], "tie": ["bow tie", "Windsor tie"], "skis": ["ski"],
    "sports ball": ["baseball", "basketball", "golf ball", "rugby ball", "soccer ball", "tennis ball", "volleyball"],
    "tennis racket": ["racket"], "bottle": ["beer bottle", "pill bottle", "pop bottle", "water bottle", "wine bottle"],
    "cup": ["coffee mug", "cup"], "bowl": ["mixing bowl", "soup bowl"], "banana": ["banana"],
    "apple": ["Granny Smith"], "orange": ["orange"], "broccoli": ["broccoli"], "hot dog": ["hotdog"],
    "pizza": ["pizza"], "chair": ["barber chair", "folding chair", "rocking chair", "throne"],
    "couch": ["studio couch"], "bed": ["four-poster"], "dining table": ["dining table"], "toilet": ["toilet seat"],
    "tv": ["television"], "laptop": ["laptop"], "mouse": ["mouse"], "remote": ["remote control"],
    "keyboard": ["computer keyboard"], "cell phone": ["cellular telephone"], "microwave": ["microwave"],
    "toaster": ["toaster"], "refrigerator": ["refrigerator"], "clock": ["analog clock", "digital clock", "wall clock"],
    "vase": ["vase"], "teddy bear": ["teddy"], "hair drier": ["hand blower"],
}
#: families too large to list by name: ImageNet ids (0-based) of the dogs and the birds.
COCO_TO_IMAGENET_IDS = {"dog": range(151, 269), "bird": [*range(7, 25), *range(80, 101), *range(127, 147)]}


def imagenet_index() -> dict[int, str]:
    """ImageNet id -> COCO category, from the mapping (a name missing from the label file stops the script)."""
    names = [line.split(",")[0].strip() for line in (REPO / "pretrained/labels/imagenet1k.txt").read_text().splitlines()]
    lookup = {name: i for i, name in enumerate(names)}
    index = {}
    for category, members in COCO_TO_IMAGENET.items():
        for name in members:
            if name not in lookup:
                raise SystemExit(f"ImageNet has no class named {name!r} (mapping of {category})")
            index.setdefault(lookup[name], category)  # pickup and police van: car first
    for category, ids in COCO_TO_IMAGENET_IDS.items():
        index.update({i: category for i in ids})
    return index


def centre_prior(height: int, width: int) -> np.ndarray:
    """A Gaussian bump in the middle of the image, sigma a quarter of each side: a map that knows nothing but the
    photographer's habit of centring the subject."""
    y, x = np.mgrid[0:height, 0:width]
    return np.exp(-0.5 * (((x - width / 2) / (width / 4)) ** 2 + ((y - height / 2) / (height / 4)) ** 2))


def voc_boxes(path: Path, height: int, width: int) -> list[tuple[float, ...]]:
    root = ElementTree.parse(path).getroot()
    sx = width / float(root.findtext("size/width")) if root.findtext("size/width") else 1.0
    sy = height / float(root.findtext("size/height")) if root.findtext("size/height") else 1.0
    return [(float(b.findtext("xmin")) * sx, float(b.findtext("ymin")) * sy, float(b.findtext("xmax")) * sx,
             float(b.findtext("ymax")) * sy) for b in root.iter("bndbox")]


def yolo_boxes(path: Path, height: int, width: int, names: list[str]) -> dict[str, list[tuple[float, ...]]]:
    boxes: dict[str, list] = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        cls, cx, cy, w, h = line.split()[:5]
        cx, cy, w, h = float(cx) * width, float(cy) * height, float(w) * width, float(h) * height
        boxes.setdefault(names[int(cls)], []).append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return boxes


def summary(name: str, ratios: list[tuple[float, float]], shares: list[float], extra: str = "") -> None:
    gradcam, centre = [r for r, _ in ratios], [c for _, c in ratios]
    print(f"{name}: {len(ratios)} images{extra}; the boxes cover {statistics.mean(shares):.0%} of a photo on average "
          f"(median {statistics.median(shares):.0%})\n"
          f"  Grad-CAM mass in box / uniform:      mean {statistics.mean(gradcam):.2f}  median "
          f"{statistics.median(gradcam):.2f}  (> 1 in {sum(r > 1 for r in gradcam)} of {len(gradcam)})\n"
          f"  centred Gaussian mass in box / uniform: mean {statistics.mean(centre):.2f}  median "
          f"{statistics.median(centre):.2f}\n"
          f"  Grad-CAM beats the centred Gaussian in {sum(r > c for r, c in ratios)} of {len(ratios)} images\n"
          f"  share of the Grad-CAM heat inside the boxes: mean {statistics.mean(r * a for r, a in zip(gradcam, shares)):.0%}"
          f" (uniform map: {statistics.mean(shares):.0%})")


def raccoon(model, figure_rows: list) -> None:
    folder = DATA / "raccoon"
    photos = [folder / "images" / f"{stem}.jpg" for stem in HELD_OUT]
    ratios, shares, classes = [], [], Counter()
    for result in visionkit.explain(photos, model=model):
        height, width = result.heatmap.shape
        boxes = voc_boxes(folder / "annotations" / f"{Path(result.source).stem}.xml", height, width)
        mask = boxes_mask(height, width, boxes)
        ratios.append((inside_ratio(result.heatmap, mask), inside_ratio(centre_prior(height, width), mask)))
        shares.append(float(mask.mean()))
        classes[result.label] += 1
        figure_rows.append((result, boxes))
    summary("raccoon held-out (yolo_raccoon's split), top class explained", ratios, shares)
    print("  top classes: " + ", ".join(f"{name} {count}" for name, count in classes.most_common()))


def coco128(model) -> None:
    import json

    folder = DATA / "coco128"
    names = json.loads((folder / "classes.json").read_text())["detection_names"]
    to_coco = imagenet_index()
    photos = sorted((folder / "images").glob("*.jpg"))
    ratios, shares, used, unmapped, absent = [], [], Counter(), 0, 0
    for result in visionkit.explain(photos, model=model):
        category = to_coco.get(result.class_id)
        height, width = result.heatmap.shape
        boxes = yolo_boxes(folder / "labels" / f"{Path(result.source).stem}.txt", height, width, names)
        if category is None:
            unmapped += 1
        elif category not in boxes:
            absent += 1
        else:
            mask = boxes_mask(height, width, boxes[category])
            ratios.append((inside_ratio(result.heatmap, mask), inside_ratio(centre_prior(height, width), mask)))
            shares.append(float(mask.mean()))
            used[category] += 1
    summary("coco128, top class mapped to a COCO category with boxes in the photo", ratios, shares,
            f" scored of {len(photos)} (top class outside the mapping: {unmapped}; mapped but no such box: {absent})")
    print("  categories: " + ", ".join(f"{name} {count}" for name, count in used.most_common()))


def write_figure(path: str, model, raccoons: list) -> None:
    """The examples/ photos and four held-out raccoons (ground-truth boxes in white) with their Grad-CAM."""
    import cv2

    from visionkit.explanation.gradcam import overlay

    examples = visionkit.explain(sorted(str(p) for p in (REPO / "examples").glob("*.jpg")), model=model)
    panels, captions = [], []
    for result, boxes in [(r, []) for r in examples] + raccoons[:4]:
        image = overlay(visionkit.load_image(result.source), result.heatmap)
        for x1, y1, x2, y2 in boxes:
            cv2.rectangle(image, (int(x1), int(y1)), (int(x2), int(y2)), (255, 255, 255), max(2, image.shape[0] // 150))
        panels.append(image)
        captions.append(f"{result.label[:22]} {result.score:.2f}")
    rows = [panels[:len(examples)], panels[len(examples):]]
    labels = [captions[:len(examples)], captions[len(examples):]]
    visionkit.save_image(path, visionkit.contact_sheet(rows, labels, tile=200, title=f"Grad-CAM, {model}, "
                                                       "layer top_activation; raccoons: held-out, GT box in white"),
                         quality=85)
    print(f"figure: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--figure", default=None, help="also write the README figure here (.jpg)")
    args = parser.parse_args()
    rows: list = []
    raccoon(args.model, rows)
    coco128(args.model)
    if args.figure:
        write_figure(args.figure, args.model, rows)


if __name__ == "__main__":
    main()
