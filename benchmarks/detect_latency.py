"""Detection speed: end to end vs the bare model call vs OpenCV's darknet runtime, and batch throughput on a folder.

All in one run, passes interleaved so that load from other processes hits every contender alike; each figure is
the median over ``--repeats`` passes.

1. Latency, one image at a time (batch 1, the interactive case), on ``--images``:
   - end to end: ``visionkit.detect(path)`` (decode the file, letterbox, model, decode the heads, NMS);
   - the bare model call: the compiled Keras model on an already letterboxed canvas;
   - ``cv2.dnn``: OpenCV's darknet reader on the same cfg, the original float32 ``.weights`` (the bundled
     float16 copy rounds the same values) and the same input size, ``net.forward`` on an already made blob
     (its ``[yolo]`` layers included). Only for a detector with a darknet cfg, when the ``.weights`` file exists.
   The stages of the end-to-end path are timed too, so the overhead around the network is visible.
2. Throughput on a folder (``--folder``, default coco128's 128 photos), ``--batch`` images per call:
   ``visionkit.detect(folder, batch_size=B)`` vs ``model.predict_on_batch`` on batches decoded and letterboxed
   beforehand.

    python benchmarks/detect_latency.py [--model yolov3_tiny_coco] [--images examples] [--folder DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def cv2_runner(detector, weights: Path):
    """``blob -> outputs`` of cv2.dnn on the detector's cfg and ``weights``, or None (with the reason)."""
    import cv2

    from visionkit.convert.darknet import cfg_path

    cfg = detector.spec.options.get("cfg")
    if not cfg:
        return None, "no darknet cfg recorded for this detector"
    if not weights.is_file():
        return None, f"{weights} not found"
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        return None, f"OpenCV {cv2.__version__} has no readNetFromDarknet"
    net = cv2.dnn.readNetFromDarknet(str(cfg_path(cfg)), str(weights))
    names = net.getUnconnectedOutLayersNames()
    return (lambda blob: (net.setInput(blob), net.forward(names))[1]), f"OpenCV {cv2.__version__}"


def median_ms(values) -> float:
    return statistics.median(values) * 1000


def main() -> None:
    import cv2

    from visionkit.core.io import expand_sources, load_image
    from visionkit.detection.boxes import letterbox
    from visionkit.detection.config import DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET, DEFAULT_MODEL
    from visionkit.detection.detector import load_detector, postprocess, raw_outputs
    from visionkit.detection.predict import detect

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--images", default=str(REPO / "examples"))
    parser.add_argument("--folder", default=str(SHARED / "coco128" / "images"))
    parser.add_argument("--darknet-weights", default=str(SHARED / "weights" / "yolov3-tiny.weights"),
                        help="the original .weights for the cv2.dnn run (default: YOLOv3-tiny's)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    detector = load_detector(args.model)
    height, width = detector.input_size
    paths = expand_sources([args.images])
    canvases = [letterbox(load_image(p), detector.input_size)[0][None].astype(np.float32) for p in paths]
    blobs = [cv2.dnn.blobFromImage(c[0], 1 / 255.0, (width, height), swapRB=False, crop=False) for c in canvases]
    run_cv2, cv2_note = cv2_runner(detector, Path(args.darknet_weights))
    detector.predict(canvases[0])  # trace once
    detect(paths[0], detector)
    if run_cv2:
        run_cv2(blobs[0])

    def one_pass(function) -> float:
        start = time.perf_counter()
        for index in range(len(paths)):
            function(index)
        return (time.perf_counter() - start) / len(paths)

    stage: dict = {}

    def staged(index: int) -> None:
        t0 = time.perf_counter()
        image = load_image(paths[index])
        t1 = time.perf_counter()
        canvas, geometry = letterbox(image, detector.input_size)
        t2 = time.perf_counter()
        raw = raw_outputs(detector, canvas[None].astype(np.float32))[0]
        t3 = time.perf_counter()
        postprocess(detector, raw, geometry, DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET)
        t4 = time.perf_counter()
        for name, value in zip(("decode image", "letterbox", "model", "decode + NMS"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stage.setdefault(name, []).append(value)

    passes: dict = {"bare": [], "end": [], "cv2": []}
    for _ in range(args.repeats):  # interleaved
        passes["bare"].append(one_pass(lambda i: detector.predict(canvases[i])))
        passes["end"].append(one_pass(lambda i: detect(paths[i], detector, batch_size=1)))
        if run_cv2:
            passes["cv2"].append(one_pass(lambda i: run_cv2(blobs[i])))
        one_pass(staged)
    bare, end_to_end = median_ms(passes["bare"]), median_ms(passes["end"])
    print(f"model {detector.name}, input {height}x{width}, {len(paths)} images from {args.images}, batch 1, "
          f"median of {args.repeats} interleaved passes")
    print(f"bare model call       {bare:8.2f} ms/image")
    print(f"end to end (detect)   {end_to_end:8.2f} ms/image   {end_to_end / bare:.2f}x the bare call")
    if run_cv2:
        dnn = median_ms(passes["cv2"])
        print(f"cv2.dnn forward       {dnn:8.2f} ms/image   bare call {bare / dnn:.2f}x cv2.dnn, end to end "
              f"{end_to_end / dnn:.2f}x  ({cv2_note}, {Path(args.darknet_weights).name})")
    else:
        print(f"cv2.dnn: skipped ({cv2_note})")
    for name, values in stage.items():
        print(f"  {name:<19} {median_ms(values):8.2f} ms")

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"throughput: skipped ({folder} not found)")
        return
    files = expand_sources([str(folder)])
    decoded = np.stack([letterbox(load_image(p), detector.input_size)[0] for p in files]).astype(np.float32)
    batches = [decoded[i:i + args.batch] for i in range(0, len(decoded), args.batch)]
    detector.model.predict_on_batch(batches[0])
    timed: dict = {"detect": [], "predict_on_batch": []}
    for _ in range(max(1, args.repeats // 2)):
        start = time.perf_counter()
        detect(str(folder), detector, batch_size=args.batch)
        timed["detect"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for batch in batches:
            detector.model.predict_on_batch(batch)
        timed["predict_on_batch"].append(time.perf_counter() - start)
    rate = {k: len(files) / statistics.median(v) for k, v in timed.items()}
    print(f"throughput on {len(files)} images of {folder}, batch {args.batch}, median of {len(timed['detect'])} "
          f"passes: detect {rate['detect']:.1f} images/s, predict_on_batch on pre-decoded batches "
          f"{rate['predict_on_batch']:.1f} images/s ({rate['detect'] / rate['predict_on_batch']:.2f}x)")


if __name__ == "__main__":
    main()
