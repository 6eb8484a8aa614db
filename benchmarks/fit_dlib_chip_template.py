"""Fit the 5-point template that maps MTCNN's landmarks onto dlib's 150-px face chip, and validate it.

dlib's encoder expects the chip ``get_face_chip_details(shape, 150, 0.25)`` cuts from its own 5-point predictor
(eye corners and the base of the nose). visionkit finds faces with MTCNN (eye centres, nose tip, mouth corners), so
it needs those five points *in dlib's chip*: for each face, MTCNN's box goes to dlib's shape predictor
(``dlib.rectangle``, no HOG detector), dlib's chip transform maps MTCNN's landmarks into the chip, and the template
is their mean (the least-squares point for a fixed chip frame).

Faces: AT&T s1–s20 only (s21–s30 are held out and never read here), the photos in examples/ and the faces MTCNN
finds in coco128 (score ≥ 0.95, side ≥ 40 px). Fit: AT&T s1–s10, examples/, even-numbered coco128 faces.
Validation: AT&T s11–s20 and odd-numbered coco128 faces, where chips cut with MTCNN + the template (a least-squares
similarity, as visionkit.faces.align does) are encoded with dlib and compared with dlib's own chips.

Usage: python benchmarks/fit_dlib_chip_template.py   (about 2 minutes on 2 cores)
"""

from __future__ import annotations

import time

import dlib_reference as ref
import numpy as np

COCO = ref.SHARED / "coco128" / "images"
MIN_SCORE, MIN_SIDE = 0.95, 40


def collect(dlib, predictor):
    """Faces as dicts: set, source, image, MTCNN landmarks, box, dlib's chip and chip matrix."""
    from visionkit.core.io import load_image
    from visionkit.faces.align import detect_faces

    faces = []

    def large_faces(image):
        # Searched from the default 20 px and filtered: MTCNN's min_face_size ≥ 30 misses the 84-px astronaut face.
        found, _ = detect_faces(image, min_confidence=MIN_SCORE, upscale=False)
        return [f for f in found if min(f.width, f.height) >= MIN_SIDE]

    def add(group, split, source, image, face):
        chip, matrix = ref.dlib_alignment(dlib, predictor, image, face.box)
        faces.append({"group": group, "split": split, "source": source, "image": image, "box": face.box,
                      "landmarks": np.asarray(face.landmarks, np.float64), "chip": chip, "matrix": matrix})

    for identity, path in ref.att_paths(range(1, 21)):
        image = load_image(path)
        found, _ = detect_faces(image)
        if found:
            add("att", "fit" if int(identity[1:]) <= 10 else "validate", str(path), image, found[0])
    for path in sorted((ref.REPO / "examples").glob("*.jpg")):
        image = load_image(path)
        for face in large_faces(image):
            add("examples", "fit", str(path), image, face)
    count = 0
    for path in sorted(COCO.glob("*.jpg")):
        image = load_image(path)
        for face in large_faces(image):
            add("coco128", "fit" if count % 2 == 0 else "validate", str(path), image, face)
            count += 1
    return faces


def warp(image, matrix, border):
    import cv2

    return cv2.warpAffine(image, matrix, (ref.CHIP_SIZE, ref.CHIP_SIZE), flags=cv2.INTER_LINEAR, borderMode=border,
                          borderValue=0)


def template_matrix(landmarks, template):
    """visionkit's alignment: least-squares similarity over the 5 points (estimateAffinePartial2D, as face_align)."""
    import cv2

    matrix, _ = cv2.estimateAffinePartial2D(np.float32(landmarks), np.float32(template), method=cv2.RANSAC,
                                            ransacReprojThreshold=1e4, refineIters=20)
    return matrix


def describe(values) -> str:
    values = np.asarray(values)
    return f"median {np.median(values):.4f}  p90 {np.percentile(values, 90):.4f}  max {values.max():.4f}  (n={len(values)})"


def main() -> None:
    import cv2

    from visionkit.faces.align import canonical_template

    started = time.perf_counter()
    dlib, predictor, recognizer = ref.load_dlib()
    faces = collect(dlib, predictor)
    for face in faces:
        face["mapped"] = ref.map_points(face["matrix"], face["landmarks"])
    counts = {(f["group"], f["split"]): 0 for f in faces}
    for f in faces:
        counts[(f["group"], f["split"])] += 1
    print("faces:", ", ".join(f"{group}/{split} {n}" for (group, split), n in sorted(counts.items())))

    differences = [np.abs(warp(f["image"], f["matrix"], cv2.BORDER_CONSTANT).astype(float) - f["chip"]) for f in faces]
    print("chip transform check, cv2.warpAffine with it vs dlib.get_face_chip: mean |pixel difference| "
          f"{describe([d.mean() for d in differences])}; share of pixels off by > 2 grey levels "
          f"{describe([(d > 2).mean() for d in differences])}")

    fit = np.stack([f["mapped"] for f in faces if f["split"] == "fit"])
    template = fit.mean(axis=0)
    spread = np.sqrt(((fit - template) ** 2).sum(axis=2)).mean(axis=0)
    names = ("left eye", "right eye", "nose", "mouth left", "mouth right")
    print(f"\nCHIP_TEMPLATE_150 (mean of {len(fit)} faces; image-left first, chip pixels x, y):")
    print("np.array([" + ", ".join(f"[{x:.2f}, {y:.2f}]" for x, y in template) + "], dtype=np.float32)")
    print("median of the same faces:     " + ", ".join(f"[{x:.2f}, {y:.2f}]" for x, y in np.median(fit, axis=0)))
    print("mean distance of a face's point to the template (px): "
          + ", ".join(f"{n} {s:.2f}" for n, s in zip(names, spread)))

    arcface = canonical_template((ref.CHIP_SIZE, ref.CHIP_SIZE))
    print("for comparison, visionkit's ArcFace template at 150 px: "
          + ", ".join(f"[{x:.1f}, {y:.1f}]" for x, y in arcface))

    validation = [f for f in faces if f["split"] == "validate"]
    chips = {"dlib": [f["chip"] for f in validation]}
    corner_error = []
    for name, points, border in (("template, replicate border", template, cv2.BORDER_REPLICATE),
                                 ("template, black border", template, cv2.BORDER_CONSTANT),
                                 ("ArcFace template, replicate", arcface, cv2.BORDER_REPLICATE)):
        chips[name] = []
        for f in validation:
            matrix = template_matrix(f["landmarks"], points)
            chips[name].append(warp(f["image"], matrix, border))
            if name.startswith("template, r"):
                inverse = cv2.invertAffineTransform(f["matrix"])
                corners = np.float64([[0, 0], [149, 0], [0, 149], [149, 149], [75, 75]])
                corner_error.append(np.linalg.norm(ref.map_points(matrix, ref.map_points(inverse, corners)) - corners,
                                                   axis=1).mean())
    encodings = {name: np.stack([np.asarray(v) for v in recognizer.compute_face_descriptor(list(c))])
                 for name, c in chips.items()}
    print(f"\nvalidation ({len(validation)} faces not used in the fit): chip geometry, template vs dlib "
          f"(mean displacement of chip corners and centre, px): {describe(corner_error)}")
    groups = np.array([f["group"] for f in validation])
    unit = {name: e / np.linalg.norm(e, axis=1, keepdims=True) for name, e in encodings.items()}
    for name in chips:
        if name == "dlib":
            continue
        raw = np.linalg.norm(encodings[name] - encodings["dlib"], axis=1)
        squared = ((unit[name] - unit["dlib"]) ** 2).sum(axis=1)
        for group in sorted(set(groups)):
            pick = groups == group
            print(f"  {name:28s} {group:8s} raw Euclidean to dlib's chip: {describe(raw[pick])}")
            print(f"  {'':28s} {'':8s} squared L2 (normalised):      {describe(squared[pick])}")

    hog = dlib.get_frontal_face_detector()
    pairs = []
    for f in validation:
        if f["group"] != "att":
            continue
        boxes, scores, _ = hog.run(f["image"], 1, 0.0)
        if boxes:
            shape = predictor(f["image"], boxes[int(np.argmax(scores))])
            pairs.append((dlib.get_face_chip(f["image"], shape, ref.CHIP_SIZE, ref.CHIP_PADDING), f["chip"]))
    if pairs:
        a = np.stack([np.asarray(v) for v in recognizer.compute_face_descriptor([p[0] for p in pairs])])
        b = np.stack([np.asarray(v) for v in recognizer.compute_face_descriptor([p[1] for p in pairs])])
        print(f"\nreference check, AT&T validation: dlib chips from its HOG box vs from MTCNN's box, raw Euclidean: "
              f"{describe(np.linalg.norm(a - b, axis=1))}")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
