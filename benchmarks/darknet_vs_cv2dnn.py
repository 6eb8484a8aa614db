"""Conversion error of visionkit's darknet import against OpenCV's darknet reader (``cv2.dnn``, OpenCV 4.x).

Usage:
  python benchmarks/darknet_vs_cv2dnn.py [--photos N] [--conf 0.25 0.05] [--iou 0.45]
  python benchmarks/darknet_vs_cv2dnn.py --random-cfg tests/convert/data/darknet/yolov4.cfg [--photos 2]

Default: the official YOLOv3-tiny COCO weights in ../shared/data/weights, with the cfg bundled beside
``yolov3_tiny_coco`` (pjreddie's, with the mask the weights were trained with), on examples/*.jpg and the first coco128
images (N photos in all, letterboxed by visionkit; cv2.dnn gets the very same canvas). Printed per photo set:
max |raw head difference| per head for the float32 conversion and for the bundled float16 copy
(``yolov3_tiny_coco``), and the agreement of the final detections (visionkit decode + NMS vs cv2's [yolo]
layer + ``cv2.dnn.NMSBoxesBatched``) at each ``conf``. With ``--random-cfg`` any darknet cfg (e.g. the official
YOLOv4) gets random weights and random images and only the raw heads and decoded rows are compared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the reference helpers live with the tests

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tests.convert.darknet_reference import (compare_box_sets, cv2_boxes, cv2_forward, visionkit_boxes,  # noqa: E402
                                            write_random_weights)
from visionkit.convert.darknet import convert_darknet  # noqa: E402

WEIGHTS = REPO.parent / "shared" / "data" / "weights"
COCO128 = REPO.parent / "shared" / "data" / "coco128" / "images"


def heads_of(model, canvas) -> list[np.ndarray]:
    return [np.asarray(out)[0] for out in model(canvas[None].astype(np.float32))]


def traced(model):
    """The model call in one ``tf.function``, as the detector handle runs it."""
    import tensorflow as tf

    return tf.function(lambda x: model(x, training=False), reduce_retracing=True)


def photos(count: int) -> list[tuple[str, np.ndarray]]:
    from visionkit.core.io import load_image
    from visionkit.detection.boxes import letterbox

    paths = sorted((REPO / "examples").glob("*.jpg")) + sorted(COCO128.glob("*.jpg"))
    return [(p.name, letterbox(load_image(p), (416, 416))[0]) for p in paths[:count]]


def cv2_net(cfg: Path, weights: Path):
    """cv2's reader; [yolo] ``thresh = 0`` (OpenCV-only key, default 0.2) so low conf can be compared."""
    folder = Path(tempfile.mkdtemp())
    (folder / cfg.name).write_text(cfg.read_text().replace("[yolo]", "[yolo]\nthresh = 0"))
    return cv2.dnn.readNetFromDarknet(str(folder / cfg.name), str(weights))


def official(args) -> None:
    from visionkit.core.registry import get_spec
    from visionkit.core.model import build

    cfg, weights = REPO / "pretrained" / "weights" / "yolov3-tiny.cfg", WEIGHTS / "yolov3-tiny.weights"
    start = time.perf_counter()
    converted = convert_darknet(cfg, weights)
    print(f"converted {cfg.name} + {weights.name} in {time.perf_counter() - start:.1f} s: header "
          f"{converted.header}, {converted.values} float32 read, {converted.trailing_bytes} trailing bytes")
    half = build(get_spec("yolov3_tiny_coco"))
    net = cv2_net(cfg, weights)
    images = photos(args.photos)
    raw32 = np.zeros(len(converted.heads))
    raw16 = np.zeros(len(converted.heads))
    tallies = {(name, conf): [0, 0, 0, 1.0] for name in ("fp32", "fp16") for conf in args.conf}
    seconds = {"keras": [], "cv2": []}
    full_model, half_model = traced(converted.model), traced(half)
    heads_of(full_model, images[0][1]), heads_of(half_model, images[0][1])  # trace once before timing
    for name, canvas in images:
        start = time.perf_counter()
        theirs, rows = cv2_forward(cv2, net, canvas)
        seconds["cv2"].append(time.perf_counter() - start)
        start = time.perf_counter()
        full = heads_of(full_model, canvas)
        seconds["keras"].append(time.perf_counter() - start)
        rounded = heads_of(half_model, canvas)
        raw32 = np.maximum(raw32, [np.abs(a - b).max() for a, b in zip(full, theirs)])
        raw16 = np.maximum(raw16, [np.abs(a - b).max() for a, b in zip(rounded, full)])
        for conf in args.conf:
            reference = cv2_boxes(cv2, rows, (416, 416), conf, args.iou)
            for label, outputs in (("fp32", full), ("fp16", rounded)):
                agreement = compare_box_sets(visionkit_boxes(outputs, converted.heads, (416, 416), conf, args.iou),
                                             reference)
                tally = tallies[(label, conf)]
                tally[0] += agreement["same"]
                tally[1] += agreement["ours"]
                tally[2] += agreement["theirs"]
                if agreement["matched"]:
                    tally[3] = min(tally[3], agreement["worst_iou"])
    magnitude = max(np.abs(h).max() for h in full)
    print(f"{len(images)} photos ({images[0][0]} …), raw outputs up to |{magnitude:.1f}|")
    print(f"max |fp32 conversion - cv2.dnn| per head: {', '.join(f'{d:.2e}' for d in raw32)}")
    print(f"max |fp16 bundle - fp32 conversion| per head: {', '.join(f'{d:.2e}' for d in raw16)}")
    keras_ms, cv2_ms = (1000 * float(np.median(seconds[k])) for k in ("keras", "cv2"))
    print(f"batch-1 forward, median over the photos: Keras model (tf.function) {keras_ms:.1f} ms, cv2.dnn forward (with "
          f"its [yolo] decoding) {cv2_ms:.1f} ms; ratio {keras_ms / cv2_ms:.2f}")
    for (label, conf), (same, ours, theirs, worst) in tallies.items():
        print(f"{label} conf {conf} iou {args.iou}: identical box sets on {same}/{len(images)} photos "
              f"({ours} boxes vs cv2's {theirs}; worst matched IoU {worst:.6f})")


def random_cfg(args) -> None:
    cfg = Path(args.random_cfg)
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "random.weights"
        write_random_weights(weights, cfg.read_text(), seed=0)
        start = time.perf_counter()
        converted = convert_darknet(cfg, weights)
        print(f"converted {cfg.name} + random weights ({converted.values} float32) in "
              f"{time.perf_counter() - start:.1f} s")
        net = cv2_net(cfg, weights)
    height, width = converted.model.input_shape[1:3]
    worst_raw, worst_rows, magnitude = np.zeros(len(converted.heads)), 0.0, 0.0
    from visionkit.detection.decode import decode

    for canvas in np.random.default_rng(1).uniform(0, 255, (args.photos, height, width, 3)):
        theirs, rows = cv2_forward(cv2, net, canvas.astype(np.float32))
        mine = heads_of(converted.model, canvas)
        worst_raw = np.maximum(worst_raw, [np.abs(a - b).max() for a, b in zip(mine, theirs)])
        magnitude = max(magnitude, max(float(np.abs(h).max()) for h in mine))
        decoded = []
        for raw, head in zip(mine, converted.heads):
            boxes, objectness, probs = decode(raw, head["anchors"], head["scale_x_y"], "logistic")
            centre = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)
            decoded.append(np.concatenate([centre, objectness[:, None], objectness[:, None] * probs], axis=1))
        worst_rows = max(worst_rows, float(np.abs(np.concatenate(decoded) - rows).max()))
    print(f"{args.photos} random images {height}x{width}, raw outputs up to |{magnitude:.2f}|: max |raw diff| per head "
          f"{', '.join(f'{d:.2e}' for d in worst_raw)}; max |decoded [yolo] row diff| {worst_rows:.2e} "
          f"(scale_x_y {[h['scale_x_y'] for h in converted.heads]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=11)
    parser.add_argument("--conf", type=float, nargs="+", default=[0.25, 0.05])
    parser.add_argument("--iou", type=float, default=0.45)
    parser.add_argument("--random-cfg", default="")
    args = parser.parse_args()
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        raise SystemExit(f"OpenCV {cv2.__version__} has no cv2.dnn.readNetFromDarknet: "
                         f"pip install 'opencv-python-headless<5'")
    random_cfg(args) if args.random_cfg else official(args)


if __name__ == "__main__":
    main()
