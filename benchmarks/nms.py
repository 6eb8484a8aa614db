"""Time per NMS call: visionkit.detection.nms vs tf.image.non_max_suppression vs cv2.dnn.NMSBoxes, in one run.

Two box distributions, 1,000 and 10,000 boxes each, IoU threshold 0.5:
  scattered - centres uniform on a 1000x1000 image, sides 10-120 px (thousands of boxes survive);
  clustered - boxes jittered around 20 objects (a detector's raw output: few survive).
All three must keep the same indices (checked here). Each timing is the best of ``--repeats`` calls, the three
libraries interleaved so that load from other processes hits them alike; ratios are baseline / visionkit.

    python benchmarks/nms.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from visionkit.detection.nms import nms  # noqa: E402


def make_boxes(rng: np.random.Generator, count: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "scattered":
        centres, sides = rng.uniform(0, 1000, (count, 2)), rng.uniform(10, 120, (count, 2))
    else:
        objects, sizes = rng.uniform(50, 950, (20, 2)), rng.uniform(30, 200, (20, 2))
        which = rng.integers(0, 20, count)
        centres = objects[which] + rng.normal(0, 8, (count, 2))
        sides = sizes[which] * rng.uniform(0.8, 1.25, (count, 2))
    boxes = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1).astype(np.float32)
    return boxes, rng.uniform(0, 1, count).astype(np.float32)


def best_times(functions: dict, repeats: int) -> dict:
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--iou", type=float, default=0.5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'boxes':>6} {'kind':>10} {'kept':>5} {'visionkit':>10} {'tf':>10} {'cv2':>10} {'tf/vk':>6} {'cv2/vk':>7}")
    for kind in ("scattered", "clustered"):
        for count in (1_000, 10_000):
            boxes, scores = make_boxes(rng, count, kind)
            yxyx, tf_scores = tf.constant(boxes[:, [1, 0, 3, 2]]), tf.constant(scores)
            xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
            functions = {
                "visionkit": lambda: nms(boxes, scores, args.iou),
                "tf": lambda: tf.image.non_max_suppression(yxyx, tf_scores, count, args.iou).numpy(),
                "cv2": lambda: np.asarray(cv2.dnn.NMSBoxes(xywh, scores, 0.0, args.iou)).reshape(-1),
            }
            outputs = {name: function() for name, function in functions.items()}  # warm-up and agreement
            if not all(np.array_equal(outputs["visionkit"], out) for out in outputs.values()):
                raise SystemExit(f"{kind} {count}: kept indices differ between libraries")
            best = best_times(functions, args.repeats)
            ms = {name: 1000 * value for name, value in best.items()}
            print(f"{count:>6} {kind:>10} {len(outputs['visionkit']):>5} {ms['visionkit']:>8.2f}ms {ms['tf']:>8.2f}ms "
                  f"{ms['cv2']:>8.2f}ms {ms['tf'] / ms['visionkit']:>6.2f} {ms['cv2'] / ms['visionkit']:>7.2f}")


if __name__ == "__main__":
    main()
