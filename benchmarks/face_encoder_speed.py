"""Milliseconds per face: visionkit's Keras conversion of dlib's face encoder vs dlib-bin itself, same chips, same run.

Chips: 32 aligned 150×150 chips cut by dlib (HOG face, 5-point predictor, ``get_face_chip``) from AT&T s1–s20.
Each repeat times, interleaved, at batch 1 and batch 32: the encoder as visionkit's pipeline runs it
(``visionkit.faces.encoder.encode``: the model handle's compiled function, with the encoder's own settings — no
mirror image for dlib_resnet_v1), the handle alone (``LoadedModel.predict``), the Keras model called eagerly
(``model(x)``, for comparison), and dlib's ``compute_face_descriptor`` on one chip and on the list of 32 chips.
Figures are medians over the repeats; ratios are dlib's time over visionkit's (> 1: visionkit is faster).

Usage: python benchmarks/face_encoder_speed.py [--repeats 7] [--singles 8]
"""

from __future__ import annotations

import argparse
import statistics
import time

import dlib_reference as ref
import numpy as np

BATCH = 32


def real_chips(dlib, predictor, count: int) -> np.ndarray:
    from visionkit.core.io import load_image

    detector = dlib.get_frontal_face_detector()
    chips = []
    for _, path in ref.att_paths(range(1, 21)):
        image = load_image(path)
        boxes, scores, _ = detector.run(image, 1, 0.0)
        if boxes:
            chips.append(dlib.get_face_chip(image, predictor(image, boxes[int(np.argmax(scores))]), 150, 0.25))
        if len(chips) == count:
            return np.stack(chips)
    raise SystemExit(f"found only {len(chips)} faces")


def per_face_ms(function, faces: int) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000 / faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--singles", type=int, default=8, help="single-chip calls per repeat (batch-1 timings)")
    args = parser.parse_args()

    import tensorflow as tf

    from visionkit.faces.encoder import encode, load_encoder

    dlib, predictor, recognizer = ref.load_dlib()
    chips = real_chips(dlib, predictor, BATCH)
    encoder = load_encoder("dlib_resnet_v1")
    model = encoder.model
    pixels = chips.astype(np.float32)
    singles = [pixels[i:i + 1] for i in range(args.singles)]
    chip_list = list(chips)

    methods = {
        "visionkit encode(), batch 1": (lambda: [encode(encoder, x) for x in singles], args.singles),
        "visionkit handle .predict, batch 1": (lambda: [encoder.predict(x) for x in singles], args.singles),
        "keras model(x) eager, batch 1": (lambda: [np.asarray(model(x, training=False)) for x in singles], args.singles),
        "visionkit encode(), batch 32": (lambda: encode(encoder, pixels), BATCH),
        "visionkit handle .predict, batch 32": (lambda: encoder.predict(pixels), BATCH),
        "keras model(x) eager, batch 32": (lambda: np.asarray(model(pixels, training=False)), BATCH),
        "dlib, batch 1": (lambda: [recognizer.compute_face_descriptor(c) for c in chip_list[:args.singles]],
                          args.singles),
        "dlib, batch 32 (list of chips)": (lambda: recognizer.compute_face_descriptor(chip_list), BATCH),
    }
    for function, _ in methods.values():  # warm-up: graph tracing, allocations
        function()
    times = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, (function, faces) in methods.items():
            times[name].append(per_face_ms(function, faces))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"ms per face, median of {args.repeats} interleaved repeats (tensorflow {tf.__version__}, "
          f"dlib {dlib.__version__}, {tf.config.threading.get_intra_op_parallelism_threads() or 'default'} TF threads)")
    for name, value in median.items():
        print(f"  {name:36s} {value:8.2f}")
    print("ratios (dlib / visionkit; > 1: visionkit faster)")
    for batch, dlib_name in (("1", "dlib, batch 1"), ("32", "dlib, batch 32 (list of chips)")):
        print(f"  batch {batch:2s}: dlib / encode() {median[dlib_name] / median[f'visionkit encode(), batch {batch}']:.2f}, "
              f"dlib / eager model(x) {median[dlib_name] / median[f'keras model(x) eager, batch {batch}']:.2f}")
    reference = np.stack([np.asarray(d) for d in recognizer.compute_face_descriptor(chip_list)])
    same = np.abs(encode(encoder, pixels) - reference / np.linalg.norm(reference, axis=1, keepdims=True)).max()
    print(f"check: encode() vs dlib's normalised descriptors on these chips, max |difference| {same:.2e}")


if __name__ == "__main__":
    main()
