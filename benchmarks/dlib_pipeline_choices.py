"""The choices of visionkit's pipeline for ``dlib_resnet_v1``, made on AT&T s1–s20 only (s21–s30 are held out and
never read here): the border fill outside the image, whether to average the mirror image's encoding, and the
default threshold τ on squared distances of L2-normalised encodings.

Every variant uses MTCNN + ``CHIP_TEMPLATE_150`` (visionkit's alignment for this encoder) on the same 200 photos.
For each: ROC AUC and EER over all 19,900 pairs, and the τ whose decisions ``d ≤ τ`` agree best with dlib's own
rule ``‖a − b‖ ≤ 0.6`` on the raw descriptors of the same chips (no mirror: dlib's rule), with the accuracy there.
For reference, dlib-bin's own pipeline on the same photos: HOG detector (upsampled once), 5-point predictor,
``get_face_chip(…, 150, 0.25)``, raw descriptors, 0.6.

Usage: python benchmarks/dlib_pipeline_choices.py   (about 2 minutes on 2 cores)
"""

from __future__ import annotations

import dlib_reference as ref
import numpy as np
from dlib_descriptor_norms import best_agreement


def main() -> None:
    import keras

    from visionkit.core.io import load_image
    from visionkit.faces.align import Alignment, align_face, detect_faces
    from visionkit.faces.dlib_resnet import DLIB_DISTANCE_THRESHOLD
    from visionkit.faces.metrics import accuracy_at, roc_summary
    from visionkit.faces.predict import encode, load_encoder

    dlib, predictor, recognizer = ref.load_dlib()
    hog = dlib.get_frontal_face_detector()
    encoder = load_encoder("dlib_resnet_v1")
    raw_model = keras.Model(encoder.model.input, encoder.model.get_layer("descriptor").output)
    labels, images, faces, dlib_descriptors = [], [], [], []
    for identity, path in ref.att_paths(range(1, 21)):
        image = load_image(path)
        found, _ = detect_faces(image)
        boxes, scores, _ = hog.run(image, 1, 0.0)
        descriptor = None
        if boxes:
            shape = predictor(image, boxes[int(np.argmax(scores))])
            descriptor = np.asarray(recognizer.compute_face_descriptor(dlib.get_face_chip(image, shape, 150, 0.25)))
        labels.append(identity)
        images.append(image)
        faces.append(found[0] if found else None)
        dlib_descriptors.append(descriptor)
    labels = np.array(labels)
    print(f"{len(images)} photos (AT&T s1–s20); MTCNN found {sum(f is not None for f in faces)}, "
          f"dlib's HOG (upsampled once) {sum(d is not None for d in dlib_descriptors)}")

    keep = np.array([f is not None for f in faces])
    i, j = np.triu_indices(int(keep.sum()), 1)
    truth = labels[keep][i] == labels[keep][j]
    print(f"pairs: {len(i)} ({truth.sum()} same person)\n")
    print(f"{'variant':34s} {'AUC':>7s} {'EER %':>6s} {'τ_EER':>6s} {'τ(0.6)':>7s} {'differ':>6s} {'acc τ(0.6)':>10s}")
    for border in ("replicate", "black"):
        alignment = Alignment("dlib_chip", border)
        chips = np.stack([align_face(image, face, (150, 150), alignment) for image, face in zip(images, faces) if face])
        raw = np.asarray(raw_model.predict(chips.astype("f4"), verbose=0))
        raw_same = np.linalg.norm(raw[i] - raw[j], axis=1) <= DLIB_DISTANCE_THRESHOLD
        for mirror in (False, True):
            unit = encode(encoder, chips, mirror=mirror)
            d = ((unit[i] - unit[j]) ** 2).sum(axis=1)
            summary = roc_summary(d, truth)
            tau, differ = best_agreement(d, raw_same)
            print(f"{f'border {border}, mirror {mirror}':34s} {summary.auc:7.5f} {summary.eer * 100:6.2f} "
                  f"{summary.threshold_eer:6.3f} {tau:7.4f} {differ:6d} {accuracy_at(d, truth, tau):10.4f}")

    found = np.array([d is not None for d in dlib_descriptors])
    descriptors = np.stack([d for d in dlib_descriptors if d is not None])
    a, b = np.triu_indices(len(descriptors), 1)
    truth = labels[found][a] == labels[found][b]
    distances = np.linalg.norm(descriptors[a] - descriptors[b], axis=1)
    summary = roc_summary(distances, truth)
    print(f"\ndlib-bin's own pipeline ({found.sum()} faces found, {len(a)} pairs among them): AUC {summary.auc:.5f}, "
          f"EER {summary.eer * 100:.2f} % (‖a − b‖ = {summary.threshold_eer:.3f}), accuracy at 0.6 "
          f"{accuracy_at(distances, truth, DLIB_DISTANCE_THRESHOLD):.4f}")


if __name__ == "__main__":
    main()
