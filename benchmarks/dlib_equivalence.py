"""How closely visionkit's Keras conversion of dlib's face encoder reproduces dlib-bin, on many real chips.

Chips: cut by dlib itself (HOG face, 5-point predictor, ``get_face_chip(…, 150, 0.25)``) from examples/astronaut.jpg
and every AT&T s1–s20 image in which dlib's detector finds a face (s21–s30 are held out). Prints the largest
|difference| per descriptor (raw, against ``compute_face_descriptor``) and of the L2-normalised encodings.

Usage: python benchmarks/dlib_equivalence.py
"""

from __future__ import annotations

import dlib_reference as ref
import numpy as np


def main() -> None:
    import keras

    import visionkit
    from visionkit.core.io import load_image

    dlib, predictor, recognizer = ref.load_dlib()
    detector = dlib.get_frontal_face_detector()
    paths = [ref.REPO / "examples" / "astronaut.jpg"] + [path for _, path in ref.att_paths(range(1, 21))]
    chips = []
    for path in paths:
        image = load_image(path)
        boxes, scores, _ = detector.run(image, 1 if min(image.shape[:2]) < 200 else 0, 0.0)
        if boxes:
            chips.append(dlib.get_face_chip(image, predictor(image, boxes[int(np.argmax(scores))]), 150, 0.25))
    chips = np.stack(chips)
    reference = np.stack([np.asarray(d) for d in recognizer.compute_face_descriptor(list(chips))])
    model = visionkit.load_model("dlib_resnet_v1").model
    raw = keras.Model(model.input, model.get_layer("descriptor").output)
    descriptors = np.concatenate([np.asarray(raw(chips[i:i + 32].astype(np.float32))) for i in range(0, len(chips), 32)])
    unit = np.concatenate([np.asarray(model(chips[i:i + 32].astype(np.float32))) for i in range(0, len(chips), 32)])
    worst = np.abs(descriptors - reference).max(axis=1)
    unit_worst = np.abs(unit - reference / np.linalg.norm(reference, axis=1, keepdims=True)).max(axis=1)
    print(f"{len(chips)} chips ({len(paths)} images); max |keras − dlib| per raw descriptor: median {np.median(worst):.2e}, "
          f"max {worst.max():.2e}; per normalised encoding: max {unit_worst.max():.2e}; "
          f"largest Euclidean gap {np.linalg.norm(descriptors - reference, axis=1).max():.2e}")


if __name__ == "__main__":
    main()
