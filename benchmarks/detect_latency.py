"""Detection latency: end-to-end ms per image (decode -> letterbox -> model -> decode -> NMS) vs the bare model call.

Both are measured in one run on the same images, one image at a time (batch 1, the interactive case), passes
interleaved; each figure is the median over ``--repeats`` passes. The stages of the end-to-end path are timed too, so the overhead
around the network is visible.

    python benchmarks/detect_latency.py [--model yolo_raccoon] [--images examples] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def main() -> None:
    from visionkit.core.io import expand_sources, load_image
    from visionkit.detection.boxes import letterbox
    from visionkit.detection.config import DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET
    from visionkit.detection.detector import load_detector, postprocess
    from visionkit.detection.predict import detect

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolo_raccoon")
    parser.add_argument("--images", default=str(Path(__file__).resolve().parents[1] / "examples"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    detector = load_detector(args.model)
    paths = expand_sources([args.images])
    canvases = [letterbox(load_image(p), detector.input_size)[0][None].astype(np.float32) for p in paths]
    detector.predict(canvases[0])  # trace once
    detect(paths[0], detector)

    def one_pass(function) -> float:
        start = time.perf_counter()
        for index in range(len(paths)):
            function(index)
        return (time.perf_counter() - start) / len(paths) * 1000

    stage = {}

    def staged(index: int) -> None:
        t0 = time.perf_counter()
        image = load_image(paths[index])
        t1 = time.perf_counter()
        canvas, geometry = letterbox(image, detector.input_size)
        t2 = time.perf_counter()
        raw = detector.predict(canvas[None].astype(np.float32))[0]
        t3 = time.perf_counter()
        postprocess(detector, raw, geometry, DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET)
        t4 = time.perf_counter()
        for name, value in zip(("decode image", "letterbox", "model", "decode + NMS"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stage.setdefault(name, []).append(value * 1000)

    passes: dict = {"bare": [], "end": []}
    for _ in range(args.repeats):  # interleaved, so that load from other processes hits all alike
        passes["bare"].append(one_pass(lambda i: detector.predict(canvases[i])))
        passes["end"].append(one_pass(lambda i: detect(paths[i], detector, batch_size=1)))
        one_pass(staged)
    bare, end_to_end = statistics.median(passes["bare"]), statistics.median(passes["end"])
    print(f"model {detector.name}, input {detector.input_size[0]}x{detector.input_size[1]}, {len(paths)} images, "
          f"median of {args.repeats} passes")
    print(f"bare model call      {bare:8.2f} ms/image")
    print(f"end to end (detect)  {end_to_end:8.2f} ms/image   ratio {end_to_end / bare:.2f}x the bare call")
    for name, values in stage.items():
        print(f"  {name:<18} {statistics.median(values):8.2f} ms")


if __name__ == "__main__":
    main()
