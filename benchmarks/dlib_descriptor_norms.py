"""dlib's raw descriptors vs L2-normalised ones: their norms, and the squared-distance threshold on normalised
encodings that decides like dlib's 0.6 on the raw Euclidean distance.

visionkit's encoders output L2-normalised encodings and decide "same iff squared distance ≤ τ" (τ in [0, 4]);
dlib publishes 0.6 on the Euclidean distance of its raw descriptors, whose norms are not 1. For unit vectors
``‖â − b̂‖² = (‖a − b‖² − (‖a‖ − ‖b‖)²) / (‖a‖·‖b‖)``, so τ ≈ 0.36 / ‖a‖² when the norms are alike.

Faces: AT&T s1–s20 only (s21–s30 are held out), all pairs; chips cut by dlib (its 5-point predictor on MTCNN's box)
and, second, by MTCNN + ``CHIP_TEMPLATE_150``. Descriptors from dlib-bin (equal to visionkit's conversion).

Usage: python benchmarks/dlib_descriptor_norms.py   (about a minute on 2 cores)
"""

from __future__ import annotations

import dlib_reference as ref
import numpy as np


def chips_of_att(dlib, predictor):
    import cv2

    from visionkit.core.io import load_image
    from visionkit.faces.dlib_resnet import CHIP_TEMPLATE_150
    from visionkit.faces.align import detect_faces

    labels, dlib_chips, template_chips = [], [], []
    for identity, path in ref.att_paths(range(1, 21)):
        image = load_image(path)
        found, _ = detect_faces(image)
        if not found:
            continue
        labels.append(identity)
        dlib_chips.append(ref.dlib_alignment(dlib, predictor, image, found[0].box)[0])
        matrix, _ = cv2.estimateAffinePartial2D(np.float32(found[0].landmarks), CHIP_TEMPLATE_150, method=cv2.RANSAC,
                                                ransacReprojThreshold=1e4, refineIters=20)
        template_chips.append(cv2.warpAffine(image, matrix, (ref.CHIP_SIZE, ref.CHIP_SIZE), flags=cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_REPLICATE))
    return np.array(labels), dlib_chips, template_chips


def best_agreement(normalised: np.ndarray, raw_same: np.ndarray) -> tuple[float, int]:
    """The τ for which ``normalised ≤ τ`` agrees with the raw decisions most often, and how many pairs disagree."""
    order = np.argsort(normalised)
    values, same = normalised[order], raw_same[order]
    # Disagreements when the cut is after the k-th smallest: raw-different among the first k + raw-same after them.
    disagree = np.concatenate([[0], np.cumsum(~same)]) + np.concatenate([[same.sum()], same.sum() - np.cumsum(same)])
    k = int(np.argmin(disagree))
    tau = values[k - 1] if k == len(values) else (values[max(k - 1, 0)] + values[k]) / 2 if k else values[0] / 2
    return float(tau), int(disagree[k])


def report(name: str, descriptors: np.ndarray, labels: np.ndarray) -> None:
    from visionkit.faces.dlib_resnet import DLIB_DISTANCE_THRESHOLD
    from visionkit.faces.metrics import roc_summary

    norms = np.linalg.norm(descriptors, axis=1)
    print(f"\n{name}: {len(descriptors)} faces; descriptor norms: min {norms.min():.3f}  median {np.median(norms):.3f}  "
          f"max {norms.max():.3f}  (mean {norms.mean():.3f} ± {norms.std():.3f})")
    i, j = np.triu_indices(len(descriptors), 1)
    raw = np.linalg.norm(descriptors[i] - descriptors[j], axis=1)
    unit = descriptors / norms[:, None]
    normalised = ((unit[i] - unit[j]) ** 2).sum(axis=1)
    truth = labels[i] == labels[j]
    raw_same = raw <= DLIB_DISTANCE_THRESHOLD
    tau, disagree = best_agreement(normalised, raw_same)
    naive = DLIB_DISTANCE_THRESHOLD ** 2 / np.median(norms) ** 2
    print(f"  pairs: {len(raw)} ({truth.sum()} same person)")
    print(f"  raw rule  ‖a − b‖ ≤ {DLIB_DISTANCE_THRESHOLD}: accuracy {(raw_same == truth).mean():.4f}, "
          f"false accepts {(raw_same & ~truth).sum()}, false rejects {(~raw_same & truth).sum()}")
    for label, t in (("best-agreeing", tau), ("0.6² / median norm²", naive)):
        same = normalised <= t
        print(f"  normalised ‖â − b̂‖² ≤ {t:.4f} ({label}): disagrees with the raw rule on {(same != raw_same).sum()} "
              f"pairs ({(same != raw_same).mean():.2%}); accuracy {(same == truth).mean():.4f}, "
              f"false accepts {(same & ~truth).sum()}, false rejects {(~same & truth).sum()}")
    differ = (normalised <= tau) != raw_same
    assert disagree == differ.sum()
    if differ.any():
        print(f"  pairs decided differently at τ = {tau:.4f}: raw distances {raw[differ].min():.4f} – "
              f"{raw[differ].max():.4f}, squared normalised {normalised[differ].min():.4f} – {normalised[differ].max():.4f}")
    raw_roc, unit_roc = roc_summary(raw, truth), roc_summary(normalised, truth)
    print(f"  equal error rate (s1–s20, for reference): raw {raw_roc.eer:.4f} at ‖a − b‖ = {raw_roc.threshold_eer:.4f} "
          f"(AUC {raw_roc.auc:.4f}); normalised {unit_roc.eer:.4f} at ‖â − b̂‖² = {unit_roc.threshold_eer:.4f} "
          f"(AUC {unit_roc.auc:.4f})")


def main() -> None:
    dlib, predictor, recognizer = ref.load_dlib()
    labels, dlib_chips, template_chips = chips_of_att(dlib, predictor)
    for name, chips in (("dlib's chips (5-point predictor on MTCNN's box)", dlib_chips),
                        ("MTCNN + CHIP_TEMPLATE_150 chips", template_chips)):
        descriptors = np.stack([np.asarray(d) for d in recognizer.compute_face_descriptor(chips)])
        report(name, descriptors, labels)


if __name__ == "__main__":
    main()
