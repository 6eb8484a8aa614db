"""Held-out people: AT&T s21–s30 (never used for any choice), all 4,950 pairs of their 100 photos, three pipelines
side by side in one run.

- ``dlib_resnet_v1`` through visionkit (``visionkit.embed``: MTCNN, ``CHIP_TEMPLATE_150`` alignment, the converted
  encoder), squared distance of unit encodings, default τ from the registry;
- ``facenet_att_lite0`` through visionkit (MTCNN, ArcFace template, mirror averaging), its default τ (its sidecar);
- dlib-bin's own pipeline, as ``face_recognition`` runs it: HOG detector upsampled once (``detector(image, 1)``),
  the 5-point shape predictor, ``get_face_chip(…, 150, 0.25)``, ``compute_face_descriptor``, Euclidean distance of
  raw descriptors, 0.6.

A photo where a pipeline finds no face is a *miss*. Two comparisons: (1) on the pairs whose two photos all three
pipelines found (the same pairs for each); (2) on all 4,950 pairs, a pair with a miss counted as "different" (its
distance set above every other, so it ranks as the least similar). Also ms per photo of each whole pipeline
(load, detect, align, encode), measured here on the same photos.

Usage: python benchmarks/faces_heldout.py   (about 2 minutes on 2 cores)
"""

from __future__ import annotations

import time

import dlib_reference as ref
import numpy as np

HELD_OUT = range(21, 31)


def visionkit_pipeline(name: str, paths):
    import visionkit
    from visionkit.faces.encoder import load_encoder, resolve_threshold

    encoder = load_encoder(name)
    visionkit.embed([str(paths[0])], model=encoder)  # warm-up: MTCNN and the encoder's compiled function
    start = time.perf_counter()
    results = visionkit.embed([str(p) for p in paths], model=encoder)
    seconds = time.perf_counter() - start
    tau, source = resolve_threshold(encoder, None)
    encodings = [r.encodings[0] if r.ok else None for r in results]
    return encodings, seconds, tau, lambda a, b: float(np.sum((a.astype(np.float64) - b) ** 2)), source


def dlib_pipeline(paths):
    from visionkit.core.io import load_image

    dlib, predictor, recognizer = ref.load_dlib()
    detector = dlib.get_frontal_face_detector()

    def one(path):
        image = load_image(path)
        boxes, scores, _ = detector.run(image, 1, 0.0)
        if not boxes:
            return None
        shape = predictor(image, boxes[int(np.argmax(scores))])
        return np.asarray(recognizer.compute_face_descriptor(dlib.get_face_chip(image, shape, 150, 0.25)))

    one(paths[0])
    start = time.perf_counter()
    descriptors = [one(p) for p in paths]
    seconds = time.perf_counter() - start
    return descriptors, seconds, 0.6, lambda a, b: float(np.linalg.norm(a - b)), "dlib's published 0.6"


def figures(distances: np.ndarray, same: np.ndarray, tau: float) -> dict:
    from visionkit.faces.metrics import accuracy_at, roc_summary

    summary = roc_summary(distances, same)
    return {"auc": summary.auc, "eer": summary.eer, "acc": accuracy_at(distances, same, tau),
            "far": float(np.mean(distances[~same] <= tau)), "frr": float(np.mean(distances[same] > tau))}


def main() -> None:
    paths_with_ids = ref.att_paths(HELD_OUT)
    labels = np.array([identity for identity, _ in paths_with_ids])
    paths = [path for _, path in paths_with_ids]
    pipelines = {
        "visionkit dlib_resnet_v1 (MTCNN + chip template)": visionkit_pipeline("dlib_resnet_v1", paths),
        "visionkit facenet_att_lite0 (MTCNN + ArcFace)": visionkit_pipeline("facenet_att_lite0", paths),
        "dlib-bin own (HOG ×1 + 5-point + chip)": dlib_pipeline(paths),
    }
    i, j = np.triu_indices(len(paths), 1)
    same = labels[i] == labels[j]
    found = {name: np.array([e is not None for e in p[0]]) for name, p in pipelines.items()}
    common = np.logical_and.reduce([f[i] & f[j] for f in found.values()])
    print(f"AT&T s21–s30 (held out): {len(paths)} photos, {len(i)} pairs ({same.sum()} same person)")
    for name, (encodings, seconds, tau, distance, source) in pipelines.items():
        print(f"  {name}: faces found {found[name].sum()}/{len(paths)}; {seconds * 1000 / len(paths):.1f} ms per photo "
              f"(whole pipeline); default τ = {tau:.4g} ({source})")
    print(f"pairs whose photos all three pipelines found: {common.sum()} ({same[common].sum()} same person)\n")

    header = f"{'pipeline':50s} {'pairs':>6s} {'ROC AUC':>10s} {'EER %':>6s} {'acc@τ':>7s} {'FAR@τ %':>8s} {'FRR@τ %':>8s}"
    rows = {}
    for label, mask in (("same pairs (found by all three)", common), ("all pairs, a miss = different", None)):
        print(f"{label}:\n{header}")
        for name, (encodings, _, tau, distance, _) in pipelines.items():
            values = np.array([distance(encodings[a], encodings[b]) if found[name][a] and found[name][b] else np.inf
                               for a, b in zip(i, j)])
            if mask is None:
                values[~np.isfinite(values)] = values[np.isfinite(values)].max() + 1.0
                chosen, truth = values, same
            else:
                chosen, truth = values[mask], same[mask]
            row = figures(chosen, truth, tau)
            rows[(label, name)] = row
            print(f"{name:50s} {len(chosen):6d} {row['auc']:10.7f} {row['eer'] * 100:6.3f} {row['acc']:7.4f} "
                  f"{row['far'] * 100:8.2f} {row['frr'] * 100:8.2f}")
        print()
    ours, theirs = list(pipelines)[0], list(pipelines)[2]
    for label in ("same pairs (found by all three)", "all pairs, a miss = different"):
        gap = (rows[(label, ours)]["eer"] - rows[(label, theirs)]["eer"]) * 100
        print(f"EER of visionkit's dlib pipeline minus dlib's own, {label}: {gap:+.2f} points (goal: ≤ 0.5)")
    print("facenet_keras: not measurable here (its weights are a download and this machine has no internet)")


if __name__ == "__main__":
    main()
